/**
 * HTTP Digest authentication (RFC 7616, MD5, qop=auth) against an Apache htdigest file (`user:realm:HA1`).
 * Nonces are stateless — a timestamp signed with a per-server key — and expire after `nonceLifetimeMs`
 * (answered with `stale=true`, so clients retry without asking the user); nonce counts are tracked per nonce to
 * refuse replays.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DavError } from '../errors.js';
import type { FileAuthenticator, Refusal } from './authenticator.js';
import { readUserFile } from './user-file.js';

/** The outcome of right credentials for an expired nonce: refused, with `stale=true` in the new challenge. */
const STALE = Symbol('stale');

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

/** Parse the parameters of a Digest Authorization header. */
export function parseDigestParams(header: string): Map<string, string> | null {
  const m = /^Digest\s+(.*)$/is.exec(header);
  if (!m) return null;
  const out = new Map<string, string>();
  const re = /([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/g;
  for (const p of (m[1] as string).matchAll(re)) out.set((p[1] as string).toLowerCase(), p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? ''));
  return out;
}

/** Parse htdigest text into `user` → HA1 for one realm. */
export function parseHtdigest(text: string, realm: string, source = 'htdigest file'): Map<string, string> {
  const users = new Map<string, string>();
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    if (parts.length !== 3 || !/^[0-9a-f]{32}$/i.test(parts[2] as string)) throw new DavError(500, 'DAV_ERR_AUTH_FILE', `${source} line ${n + 1} is not user:realm:md5`);
    if (parts[1] === realm) users.set(parts[0] as string, (parts[2] as string).toLowerCase());
  }
  return users;
}

/** The users of `realm` in an htdigest file; a file with none is refused (nobody could log in). */
async function loadHtdigest(path: string, realm: string): Promise<Map<string, string>> {
  const users = parseHtdigest(await readUserFile(path, 'htdigest'), realm, path);
  if (users.size === 0) throw new DavError(500, 'DAV_ERR_AUTH_FILE', `${path} has no user in realm "${realm}"; create one with htdigest ${path} "${realm}" USER`);
  return users;
}

/** Options of DigestAuth. */
export interface DigestAuthOptions {
  realm: string;
  /** The htdigest file the users came from, for `reload()`. */
  file?: string;
  /** How long a nonce is accepted (default 5 minutes). */
  nonceLifetimeMs?: number;
  now?: () => number;
}

/** Digest authentication from an htdigest user table. */
export class DigestAuth implements FileAuthenticator {
  readonly realm: string;
  /** The htdigest file the users came from ('' when they were given). */
  readonly file: string;
  #users: Map<string, string>;
  readonly #key = randomBytes(32);
  readonly #opaque = randomBytes(16).toString('hex');
  readonly #lifetime: number;
  readonly #now: () => number;
  readonly #counts = new Map<string, number>();
  /** Why each refused request was refused: STALE ones get stale=true in their challenge, the others are logged. */
  readonly #refused = new WeakMap<IncomingMessage, Refusal | typeof STALE>();

  constructor(users: Map<string, string>, options: DigestAuthOptions) {
    this.#users = users;
    this.realm = options.realm;
    this.file = options.file ?? '';
    this.#lifetime = options.nonceLifetimeMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Load the users of `realm` from an htdigest file. */
  static async fromFile(path: string, realm: string): Promise<DigestAuth> {
    return new DigestAuth(await loadHtdigest(path, realm), { realm, file: path });
  }

  async reload(): Promise<number> {
    if (!this.file) throw new Error('DigestAuth.reload: these users were not loaded from a file');
    this.#users = await loadHtdigest(this.file, this.realm);
    return this.#users.size;
  }

  /**
   * A signed nonce: its time, for the lifetime, and random bytes, so that two challenges in the same millisecond
   * differ and a nonce only ever goes to the client that asked for it (`known` relies on that).
   */
  #nonce(): string {
    const stamp = `${this.#now().toString(36)}.${randomBytes(9).toString('base64url')}`;
    return `${stamp}.${createHmac('sha256', this.#key).update(stamp).digest('base64url')}`;
  }

  /** 'ok', 'stale' (well signed but expired) or 'bad'. */
  #nonceState(nonce: string): 'ok' | 'stale' | 'bad' {
    const [t, r, sig] = nonce.split('.');
    if (!t || !r || !sig) return 'bad';
    const good = createHmac('sha256', this.#key).update(`${t}.${r}`).digest('base64url');
    if (good.length !== sig.length || !timingSafeEqual(Buffer.from(good), Buffer.from(sig))) return 'bad';
    return this.#now() - parseInt(t, 36) > this.#lifetime ? 'stale' : 'ok';
  }

  async check(req: IncomingMessage): Promise<string | null> {
    const outcome = this.#outcome(req);
    if (outcome === null || typeof outcome === 'string') return outcome;
    this.#refused.set(req, outcome);
    return null;
  }

  /**
   * The user that the request's Digest credentials prove; STALE for a right answer to an expired nonce; why
   * they prove nothing; null without credentials, or with a nonce this server never signed (a client still using
   * one from before a restart: the new challenge mends it, so it is no failed login).
   */
  #outcome(req: IncomingMessage): string | typeof STALE | Refusal | null {
    if (req.headers.authorization === undefined) return null;
    const p = parseDigestParams(req.headers.authorization);
    if (!p) return { reason: 'not Digest credentials' };
    const user = p.get('username') ?? '';
    const ha1 = this.#users.get(user);
    const nonce = p.get('nonce') ?? '';
    const uri = p.get('uri') ?? '';
    if (!ha1) return { reason: 'unknown user', user };
    if (p.get('realm') !== this.realm) return { reason: 'another realm', user };
    if (uri !== req.url) return { reason: 'the uri parameter is not the request URI', user };
    const algorithm = (p.get('algorithm') ?? 'MD5').toUpperCase();
    if (algorithm !== 'MD5') return { reason: 'an algorithm other than MD5', user };
    const state = this.#nonceState(nonce);
    if (state === 'bad') return null;
    const qop = p.get('qop');
    const nc = p.get('nc') ?? '';
    const cnonce = p.get('cnonce') ?? '';
    if (qop !== undefined && (qop !== 'auth' || !/^[0-9a-f]{8}$/i.test(nc) || !cnonce)) return { reason: 'malformed qop, nc or cnonce', user };
    const ha2 = md5(`${req.method}:${uri}`);
    const expected = qop ? md5(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
    const got = (p.get('response') ?? '').toLowerCase();
    if (got.length !== expected.length || !timingSafeEqual(Buffer.from(got), Buffer.from(expected))) return { reason: 'wrong password', user };
    if (state === 'stale') return STALE;
    if (qop) {
      // A nonce count must grow: the same (nonce, nc) twice is a replay.
      const count = parseInt(nc, 16);
      if (count <= (this.#counts.get(nonce) ?? 0)) return { reason: 'a nonce count used before (a replay)', user };
      if (this.#counts.size > 10_000) this.#counts.clear();
      this.#counts.set(nonce, count);
    }
    return user;
  }

  /**
   * Whether the request answers a live nonce that some request has already answered rightly: the client of a user
   * who is logged in. Its answer is new each time, but it is not a guess at a password (a guesser would need that
   * nonce, which only goes to the client that asked for it).
   */
  known(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    const nonce = header === undefined ? undefined : parseDigestParams(header)?.get('nonce');
    return nonce !== undefined && this.#counts.has(nonce) && this.#nonceState(nonce) === 'ok';
  }

  challenges(req: IncomingMessage): string[] {
    return [`Digest realm="${this.realm}", qop="auth", algorithm=MD5, nonce="${this.#nonce()}", opaque="${this.#opaque}"${this.#refused.get(req) === STALE ? ', stale=true' : ''}`];
  }

  refusal(req: IncomingMessage): Refusal | null {
    const refused = this.#refused.get(req);
    return refused === undefined || refused === STALE ? null : refused;
  }
}
