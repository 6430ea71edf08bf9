/**
 * MS-WDV Win32 properties in a PROPPATCH (MS-WDV §2.2.1): Windows' WebDAV redirector sends them after each
 * upload. The times that Linux can set are applied to the real file (atime, mtime), so a copy made with
 * Explorer keeps its dates on the host; creation time and attributes cannot be set on Linux and are stored as
 * dead properties instead (read back as sent).
 */
import { DavError } from '../errors.js';
import { parseHttpDate } from '../headers/http-date.js';
import { textOf, type XmlElement } from '../xml.js';
import { MS_NS } from './live.js';

/** Times a property sets on the real file. */
export type TimesEffect = { kind: 'times'; atimeMs?: number; mtimeMs?: number };

/** What a Win32 property in a `<D:set>` turns into. */
export type Win32Effect = TimesEffect | { kind: 'dead' } | null;

/** The effect of setting `el`, or null when it is not a Win32 time or attribute property. 409 on a bad value. */
export function win32Effect(el: XmlElement): Win32Effect {
  if (el.ns !== MS_NS) return null;
  const value = textOf(el).trim();
  switch (el.name) {
    case 'Win32LastModifiedTime':
      return { kind: 'times', mtimeMs: parseTime(el.name, value) };
    case 'Win32LastAccessTime':
      return { kind: 'times', atimeMs: parseTime(el.name, value) };
    case 'Win32CreationTime':
      parseTime(el.name, value);
      return { kind: 'dead' };
    case 'Win32FileAttributes':
      if (!/^[0-9a-fA-F]{1,8}$/.test(value)) throw badValue(el.name, value);
      return { kind: 'dead' };
    default:
      return null;
  }
}

function parseTime(name: string, value: string): number {
  // MS-WDV §2.2.1 sends RFC 1123 dates; read strictly, so a stray value never stamps the file with a made-up time.
  const date = parseHttpDate(value);
  if (date === null) throw badValue(name, value);
  return date.getTime();
}

function badValue(name: string, value: string): DavError {
  return new DavError(409, 'DAV_ERR_BAD_PROPERTY_VALUE', `${name} must be ${name === 'Win32FileAttributes' ? 'hexadecimal' : 'an HTTP date'}, not "${value}"`);
}
