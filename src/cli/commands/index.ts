import type { CommandModule } from '../program.js';

/** Every `spicedav` sub-command, in the order `--help` lists them. */
export const commands: CommandModule[] = [];
