/**
 * `DAV:lastmodified` in a PROPPATCH: ownCloud's and Nextcloud's way to set a file's modification time without
 * uploading it again, in Unix seconds (rclone ≥ 1.64 with vendor=owncloud or nextcloud, and sync clients). It is
 * applied to the real file, like Win32LastModifiedTime, rather than stored as a dead property that would claim a
 * date the file does not have.
 */
import { badUnixTime, parseUnixTime } from '../headers/unix-time.js';
import { DAV_NS, textOf, type XmlElement } from '../xml.js';
import type { TimesEffect } from './win32.js';

/** The modification time that setting `el` asks for, or null when `el` is not DAV:lastmodified. 409 on a bad value. */
export function lastModifiedEffect(el: XmlElement): TimesEffect | null {
  if (el.ns !== DAV_NS || el.name !== 'lastmodified') return null;
  const value = textOf(el).trim();
  const seconds = parseUnixTime(value);
  if (seconds === null) throw badUnixTime(409, 'DAV_ERR_BAD_PROPERTY_VALUE', 'lastmodified', value);
  return { kind: 'times', mtimeMs: seconds * 1000 };
}
