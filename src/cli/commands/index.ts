import type { CommandModule } from '../program.js';
import { shareCommand } from './share.js';
import { guestCommand } from './guest.js';
import { serveCommand } from './serve.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';

/** Every `spicedav` sub-command, in the order `--help` lists them. */
export const commands: CommandModule[] = [shareCommand, guestCommand, serveCommand, doctorCommand, demoCommand];
