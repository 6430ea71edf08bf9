import { badRequest } from '../errors.js';

/** Parse an Overwrite header (RFC 4918 §10.6): T (the default when absent) or F; anything else is a 400. */
export function parseOverwrite(value: string | undefined): boolean {
  if (value === undefined) return true;
  const v = value.trim().toUpperCase();
  if (v === 'T') return true;
  if (v === 'F') return false;
  throw badRequest('DAV_ERR_BAD_OVERWRITE', `Overwrite must be T or F, not "${value}"`);
}
