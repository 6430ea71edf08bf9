import { badRequest } from '../errors.js';

/** The value of a Depth header (RFC 4918 §10.2). */
export type Depth = 0 | 1 | 'infinity';

/**
 * Parse a Depth header. A missing header yields `fallback` (each method has its own default: infinity for
 * PROPFIND, COPY, MOVE, DELETE and LOCK). Anything other than 0, 1 or infinity is a 400.
 */
export function parseDepth(value: string | undefined, fallback: Depth): Depth {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (v === '0') return 0;
  if (v === '1') return 1;
  if (v === 'infinity') return 'infinity';
  throw badRequest('DAV_ERR_BAD_DEPTH', `Depth must be 0, 1 or infinity, not "${value}"`);
}
