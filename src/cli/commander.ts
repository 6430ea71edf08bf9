import type * as Commander from 'commander';
import { requireCjs } from '../require-cjs.js';

// commander's classes, loaded with require() rather than import (see require-cjs.ts for why). Each name is both
// the class (a value) and its instance type, as with a normal import.
const commander = requireCjs('commander') as typeof Commander;

export const { Command, Option, CommanderError, InvalidArgumentError } = commander;
export type Command = Commander.Command;
export type Option = Commander.Option;
export type CommanderError = Commander.CommanderError;
export type InvalidArgumentError = Commander.InvalidArgumentError;
