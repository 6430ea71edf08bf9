/**
 * HTTP Basic authentication (RFC 7617) against an Apache htpasswd file. Supported hashes: `$apr1$` (the
 * htpasswd default), `$1$` (MD5 crypt) and `{SHA}`; an entry in another scheme (bcrypt `$2y$`, SHA-crypt
 * `$5$`/`$6$`, DES crypt) makes loading fail with the user's name, so a bad file is noticed at start-up rather
 * than as "wrong password". Use it over TLS or loopback: Basic sends the password in the clear.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { DavError } from '../errors.js';
import { md5crypt } from './md5crypt.js';
import type { Authenticator } from './authenticator.js';

const sameString = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Check a password against one htpasswd hash. */
export function verifyHtpasswd(password: string, hash: string): boolean {
  if (hash.startsWith('$apr1$') || hash.startsWith('$1$')) {
    const magic = hash.startsWith('$apr1$') ? '$apr1$' : '$1$';
    const salt = hash.slice(magic.length).split('$')[0] ?? '';
    return sameString(md5crypt(password, salt, magic), hash);
  }
  if (hash.startsWith('{SHA}')) return sameString(`{SHA}${createHash('sha1').update(password, 'utf8').digest('base64')}`, hash);
  return false;
}

/** Parse htpasswd text into user → hash; throws DAV_ERR_AUTH_FILE on an unsupported scheme or a malformed line. */
export function parseHtpasswd(text: string, source = 'htpasswd file'): Map<string, string> {
  const users = new Map<string, string>();
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i <= 0) throw new DavError(500, 'DAV_ERR_AUTH_FILE', `${source} line ${n + 1} is not user:hash`);
    const user = line.slice(0, i);
    const hash = line.slice(i + 1);
    if (!/^(\$apr1\$|\$1\$|\{SHA\})/.test(hash)) {
      throw new DavError(500, 'DAV_ERR_AUTH_FILE', `${source}: user ${user} has a hash this server cannot check (${hash.slice(0, 4)}…); recreate it with htpasswd -m (MD5) or -s (SHA-1)`);
    }
    users.set(user, hash);
  }
  return users;
}

/** Basic authentication from an htpasswd user table. */
export class BasicAuth implements Authenticator {
  readonly realm: string;
  readonly #users: Map<string, string>;
  // Verified credentials, keyed by a digest of the header: MD5 crypt costs 1,000 MD5 rounds and a WebDAV
  // client sends credentials with every request.
  readonly #verified = new Map<string, string>();

  constructor(users: Map<string, string>, realm = 'spicedav') {
    this.#users = users;
    this.realm = realm;
  }

  /** Load an htpasswd file. */
  static async fromFile(path: string, realm?: string): Promise<BasicAuth> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new DavError(500, 'DAV_ERR_AUTH_FILE', `cannot read the htpasswd file ${path}: ${(err as Error).message}`, { cause: err });
    }
    return new BasicAuth(parseHtpasswd(text, path), realm);
  }

  async check(req: IncomingMessage): Promise<string | null> {
    const header = req.headers.authorization;
    const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    if (!m) return null;
    const key = createHash('sha256').update(header as string).digest('base64');
    const known = this.#verified.get(key);
    if (known !== undefined && this.#users.has(known)) return known;
    const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return null;
    const user = decoded.slice(0, i);
    const hash = this.#users.get(user);
    if (!hash || !verifyHtpasswd(decoded.slice(i + 1), hash)) return null;
    if (this.#verified.size >= 1024) this.#verified.clear();
    this.#verified.set(key, user);
    return user;
  }

  challenges(_req: IncomingMessage): string[] {
    return [`Basic realm="${this.realm.replace(/"/g, "'")}", charset="UTF-8"`];
  }
}
