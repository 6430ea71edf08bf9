/**
 * Live properties: the ones the server computes from the file system and the lock table (RFC 4918 §15,
 * RFC 4331 quota, MS-WDV Win32 times and attributes). Each has a renderer producing the whole element.
 */
import { escapeAttr, escapeText } from '../xml.js';
import { hrefOf, nameOf } from '../paths.js';
import { contentTypeOf } from '../mime.js';
import type { Entry, Space } from '../storage/backend.js';
import type { Lock, LockManager } from '../locks.js';
import { propKey } from './dead-store.js';

/** The Microsoft namespace of the MS-WDV Win32 properties. */
export const MS_NS = 'urn:schemas-microsoft-com:';
/** The DAV: namespace. */
export const D = 'DAV:';

/** A property name: namespace URI ('' for none) and local name. */
export interface PropName {
  ns: string;
  name: string;
}

/** What renderers may need besides the entry. */
export interface PropEnv {
  locks: LockManager;
  /** Filled in only when a quota property was asked for (it costs a statfs). */
  space: Space | null;
  /** Dead values that override computed ones (Win32CreationTime, Win32FileAttributes, displayname...). */
  dead: ReadonlyMap<string, string> | undefined;
  /** Display name of the share root. */
  rootName: string;
}

interface LiveProp {
  ns: string;
  name: string;
  /** Included in allprop (RFC 4918 §9.1: expensive or Microsoft-specific ones are left out). */
  allprop: boolean;
  /** Refused by PROPPATCH with 403 cannot-modify-protected-property. */
  protected: boolean;
  /** The element, or null when the property does not apply to this resource. */
  render(e: Entry, env: PropEnv): string | null;
}

/** RFC 3339 date for creationdate (RFC 4918 §15.1); phodav swaps the two formats. */
export const rfc3339 = (ms: number): string => bySecond(iso, ms, (t) => new Date(t).toISOString().slice(0, 19) + 'Z');
/** HTTP-date (IMF-fixdate) for getlastmodified and the Win32 times. */
export const httpDate = (ms: number): string => bySecond(imf, ms, (t) => new Date(t).toUTCString());

// Formatted dates by whole second: the files of one directory tend to share seconds, and formatting is a
// large part of rendering a 10,000-entry PROPFIND. Bounded: cleared when full.
const iso = new Map<number, string>();
const imf = new Map<number, string>();
function bySecond(cache: Map<number, string>, ms: number, format: (t: number) => string): string {
  const second = Math.floor(ms / 1000);
  let s = cache.get(second);
  if (s === undefined) {
    if (cache.size >= 4096) cache.clear();
    s = format(second * 1000);
    cache.set(second, s);
  }
  return s;
}

const dav = (name: string, value: string | null): string | null =>
  value === null ? null : value === '' ? `<D:${name}/>` : `<D:${name}>${value}</D:${name}>`;
const ms = (name: string, value: string): string => `<Z:${name} xmlns:Z="${MS_NS}">${value}</Z:${name}>`;

/** The activelock element of one lock (RFC 4918 §14.1). */
export function activeLockXml(lock: Lock, locks: LockManager): string {
  return (
    `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${lock.scope}/></D:lockscope>` +
    `<D:depth>${lock.depth === 0 ? '0' : 'infinity'}</D:depth>${lock.owner ?? ''}` +
    `<D:timeout>Second-${locks.remaining(lock)}</D:timeout>` +
    `<D:locktoken><D:href>${escapeText(lock.token)}</D:href></D:locktoken>` +
    `<D:lockroot><D:href>${hrefOf(lock.path, false)}</D:href></D:lockroot></D:activelock>`
  );
}

const SUPPORTED_LOCK =
  '<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
  '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>';

/** Win32FileAttributes computed from the entry: DIRECTORY or ARCHIVE, READONLY when the owner cannot write. */
function win32Attributes(e: Entry): string {
  let a = e.collection ? 0x10 : 0x20;
  if ((e.mode & 0o200) === 0) a |= 0x1;
  return a.toString(16).toUpperCase().padStart(8, '0');
}

const LIVE_LIST: LiveProp[] = [
  { ns: D, name: 'resourcetype', allprop: true, protected: true, render: (e) => (e.collection ? '<D:resourcetype><D:collection/></D:resourcetype>' : '<D:resourcetype/>') },
  { ns: D, name: 'creationdate', allprop: true, protected: true, render: (e) => dav('creationdate', rfc3339(e.birthtimeMs)) },
  { ns: D, name: 'getlastmodified', allprop: true, protected: true, render: (e) => dav('getlastmodified', httpDate(e.mtimeMs)) },
  { ns: D, name: 'getcontentlength', allprop: true, protected: true, render: (e) => (e.collection ? null : dav('getcontentlength', String(e.size))) },
  {
    ns: D, name: 'getcontenttype', allprop: true, protected: false,
    render: (e) => dav('getcontenttype', escapeText(e.collection ? 'httpd/unix-directory' : contentTypeOf(nameOf(e.path)))),
  },
  { ns: D, name: 'getetag', allprop: true, protected: true, render: (e) => dav('getetag', escapeText(e.etag)) },
  {
    ns: D, name: 'displayname', allprop: true, protected: false,
    render: (e, env) => dav('displayname', escapeText(e.path === '/' ? env.rootName : nameOf(e.path))),
  },
  { ns: D, name: 'supportedlock', allprop: true, protected: true, render: () => SUPPORTED_LOCK },
  {
    ns: D, name: 'lockdiscovery', allprop: true, protected: true,
    render: (e, env) => {
      const locks = env.locks.covering(e.path);
      return dav('lockdiscovery', locks.map((l) => activeLockXml(l, env.locks)).join(''));
    },
  },
  {
    ns: D, name: 'quota-available-bytes', allprop: false, protected: true,
    render: (e, env) => (e.collection && env.space ? dav('quota-available-bytes', String(env.space.available)) : null),
  },
  {
    ns: D, name: 'quota-used-bytes', allprop: false, protected: true,
    render: (e, env) => (e.collection && env.space ? dav('quota-used-bytes', String(env.space.used)) : null),
  },
  // MS-WDV §2.2: Windows' WebDAV redirector sets these after a PUT. Times are applied to the real file
  // (PROPPATCH → utimes) and read back from it, so an Explorer copy keeps its dates on the host.
  { ns: MS_NS, name: 'Win32LastModifiedTime', allprop: false, protected: false, render: (e) => ms('Win32LastModifiedTime', httpDate(e.mtimeMs)) },
  { ns: MS_NS, name: 'Win32LastAccessTime', allprop: false, protected: false, render: (e) => ms('Win32LastAccessTime', httpDate(e.atimeMs)) },
  { ns: MS_NS, name: 'Win32CreationTime', allprop: false, protected: false, render: (e) => ms('Win32CreationTime', httpDate(e.birthtimeMs)) },
  { ns: MS_NS, name: 'Win32FileAttributes', allprop: false, protected: false, render: (e) => ms('Win32FileAttributes', win32Attributes(e)) },
];

/** Live properties by key (`{ns}name`). */
export const LIVE = new Map<string, LiveProp>(LIVE_LIST.map((p) => [propKey(p.ns, p.name), p]));

/** Live property keys in allprop order. */
export const ALLPROP_KEYS: readonly string[] = LIVE_LIST.filter((p) => p.allprop).map((p) => propKey(p.ns, p.name));

/** Render one property for an entry: a dead value overriding it wins; null when it does not apply. */
export function renderLive(key: string, e: Entry, env: PropEnv): string | null {
  const dead = env.dead?.get(key);
  if (dead !== undefined) return dead;
  return LIVE.get(key)?.render(e, env) ?? null;
}

/** An empty element for a property name (propname answers and 404 propstats). */
export function emptyProp(p: PropName): string {
  if (p.ns === D) return `<D:${p.name}/>`;
  if (p.ns === '') return `<${p.name}/>`;
  return `<ns0:${p.name} xmlns:ns0="${escapeAttr(p.ns)}"/>`;
}
