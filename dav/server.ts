/**
 * DavServer: the WebDAV server for one folder. One `http.Server` parses HTTP for every connection — sockets
 * from `listen()` and any Duplex handed to `handleConnection()` (a SPICE mux channel) — with no request or
 * keep-alive timeout, so long transfers and idle mux connections are never cut. Requests go through a flat
 * dispatch table of method handlers; errors become responses in `respond.ts` only.
 */
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../src/log.js';
import { isLoopbackHost } from '../src/loopback.js';
import { DavError } from './errors.js';
import { Confinement } from './paths.js';
import { DEFAULT_LIMITS, type DavLimits, type DavServerOptions } from './options.js';
import { FsStorage } from './storage/fs.js';
import { createIo, isLocalFileSystem } from './storage/io.js';
import { MetaCache } from './cache.js';
import { BufferPool } from './buffer-pool.js';
import { LockManager } from './locks.js';
import { DeadPropStore } from './props/dead-store.js';
import { RequestContext, type DavShared } from './context.js';
import { errorHeaders, send, sendError } from './respond.js';
import { checkWritable } from './preconditions.js';
import type { Transfer } from './transfer.js';
import { ClientHints } from './client-hints.js';
import type { Authenticator, Refusal } from './auth/authenticator.js';
import { LoginFailures } from './auth/login-failures.js';
import { LoginThrottle } from './auth/login-throttle.js';
import { options } from './methods/options.js';
import { get, headMethod } from './methods/get.js';
import { put } from './methods/put.js';
import { del } from './methods/delete.js';
import { mkcol } from './methods/mkcol.js';
import { copy, move } from './methods/copymove.js';
import { propfind } from './methods/propfind.js';
import { proppatch } from './methods/proppatch.js';
import { lock } from './methods/lock.js';
import { unlock } from './methods/unlock.js';
import type { MethodHandler } from './methods/types.js';

const METHODS: Readonly<Record<string, MethodHandler>> = {
  OPTIONS: options, GET: get, HEAD: headMethod, PUT: put, DELETE: del, MKCOL: mkcol, COPY: copy, MOVE: move,
  PROPFIND: propfind, PROPPATCH: proppatch, LOCK: lock, UNLOCK: unlock,
};

/** Options of `DavServer.listen`. */
export interface ListenOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Require credentials on this listener (Basic or Digest, see `dav/auth`). Connections from handleConnection never need any. */
  auth?: Authenticator;
  /** Allow binding beyond loopback without auth (refused by default: anyone on the network could write the share). */
  allowUnauthenticatedRemote?: boolean;
}

/** The real path of `p`, resolving its deepest existing ancestor (the rest may not exist yet). */
function realpathNearest(p: string): string {
  let dir = resolvePath(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync.native(dir), ...rest.reverse());
    } catch {
      const up = dirname(dir);
      if (up === dir) return resolvePath(p);
      rest.push(basename(dir));
      dir = up;
    }
  }
}

/** The default place for a journal of a share root: its dead properties (`props`) or its WebDAV locks. */
export function defaultStateFile(stateDir: string | undefined, realRoot: string, kind: 'props' | 'locks' = 'props'): string {
  const dir = stateDir ?? join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'spicedav');
  return join(dir, `${kind}-${createHash('sha256').update(realRoot).digest('hex').slice(0, 16)}.jsonl`);
}

/** The journals of a share root, open: its dead properties and its WebDAV locks. */
async function openState(o: DavServerOptions, root: string, limits: DavLimits, log: Logger): Promise<Pick<DavShared, 'props' | 'locks'>> {
  const { stateDir, readOnly = false, inlineIo } = o;
  const file = (kind: 'props' | 'locks') => (stateDir === false ? null : defaultStateFile(stateDir, root, kind));
  const unavailable = (kind: 'props' | 'locks', what: string, err: unknown) =>
    new DavError(503, 'DAV_ERR_STATE_UNAVAILABLE', `cannot open ${file(kind)}, where the share's WebDAV ${what} are kept: ${(err as Error).message}`, { cause: err });
  // inlineIo undefined: each journal decides by its own disk, which need not be the share's.
  const props = await DeadPropStore.open(file('props'), log, { readOnly, inlineIo }).catch((err: unknown) => {
    throw unavailable('props', 'properties', err);
  });
  try {
    const lockLimits = { defaultTimeout: limits.defaultLockTimeout, maxTimeout: limits.maxLockTimeout, maxLocks: limits.maxLocks, orphanGrace: limits.orphanLockGrace };
    return { props, locks: await LockManager.open(file('locks'), log, lockLimits, { readOnly, inlineIo }) };
  } catch (err) {
    await props.close();
    throw unavailable('locks', 'locks', err);
  }
}

/**
 * A WebDAV (RFC 4918 class 1 and 2) server for one folder.
 * Events: 'transfer' (t: Transfer) when a GET or PUT body starts; 'error' is never emitted for request errors
 * (they are answered and logged).
 */
export class DavServer extends EventEmitter {
  /** The real path of the shared folder. */
  readonly root: string;
  /** The limits in force (options merged over DEFAULT_LIMITS). */
  readonly limits: DavLimits;
  readonly #log: Logger;
  readonly #http: http.Server;
  readonly #listeners = new Set<net.Server>();
  readonly #auth = new WeakMap<Duplex, Authenticator>();
  readonly #loginFailures = new LoginFailures();
  readonly #loginThrottle: LoginThrottle | null;
  readonly #shared: Promise<DavShared>;
  /** What requests await: #shared, or a 503 that names no host path when the store cannot be opened. */
  readonly #forRequests: Promise<DavShared>;
  readonly #serverName: string;
  readonly #cache: MetaCache | null;
  #active = 0;
  #storeFailureLogged = false;
  #idle: (() => void) | null = null;
  #closing: Promise<void> | null = null;

  constructor(opts: DavServerOptions) {
    super();
    const log = opts.log ?? silentLogger;
    this.#log = log;
    const limits: DavLimits = { ...DEFAULT_LIMITS };
    for (const k of Object.keys(DEFAULT_LIMITS) as (keyof DavLimits)[]) if (opts[k] !== undefined) limits[k] = opts[k] as number;
    this.limits = limits;
    const local = isLocalFileSystem(opts.root);
    const io = createIo({ enabled: opts.inlineIo ?? local, maxMs: limits.inlineIoMaxMs, cooldownMs: 60_000, log });
    const confinement = new Confinement(opts.root, opts.followSymlinks ?? 'never', io);
    this.root = confinement.root;
    this.#serverName = opts.serverName ?? 'spicedav';
    this.#loginThrottle = opts.loginThrottle === false ? null : new LoginThrottle(opts.loginThrottle);
    const stateFile = opts.stateDir === false ? null : defaultStateFile(opts.stateDir, this.root);
    if (stateFile && confinement.contains(realpathNearest(stateFile))) {
      throw new DavError(500, 'DAV_ERR_STATE_IN_SHARE', `the state directory ${stateFile} is inside the shared folder; choose another stateDir`);
    }
    // Made after every check that can throw: it holds a watcher and a sentinel directory until close().
    // inotify sees only changes made through this kernel: on a network file system the cache would go stale.
    const cache = (opts.cache ?? local) ? new MetaCache({ maxDirs: limits.maxWatchedDirs, log }) : null;
    this.#cache = cache;
    const readOnly = opts.readOnly ?? false;
    this.#shared = openState(opts, this.root, limits, log).then(({ props, locks }) => ({
      storage: new FsStorage(confinement, { io, cache, log }),
      // Four buffers kept: two downloads at a time reuse them; more concurrent ones allocate, and what they
      // allocated is freed afterwards instead of staying resident (eight downloads at once left 16 behind).
      buffers: new BufferPool(limits.readChunkBytes, 4),
      hints: new ClientHints(log),
      locks,
      props,
      limits,
      readOnly,
      log,
      rootName: basename(confinement.root),
      startTransfer: (t: Transfer) => this.emit('transfer', t),
      watchingTransfers: () => this.listenerCount('transfer') > 0,
    }));
    // ready() and listen() reject with the operator's message; requests get the client's (#failEarly logs the
    // first). Neither is an unhandled rejection meanwhile.
    this.#shared.catch(() => {});
    this.#forRequests = this.#shared.catch((err: unknown) => {
      throw new DavError(503, 'DAV_ERR_STATE_UNAVAILABLE', 'the server cannot open its property store; its log says why', { cause: err });
    });
    this.#forRequests.catch(() => {});
    this.#http = http.createServer(
      {
        requestTimeout: 0,
        headersTimeout: limits.headersTimeout,
        // Node checks the header deadline on a timer (30 s by default): check often enough to honour it.
        connectionsCheckingInterval: Math.max(250, Math.min(30_000, limits.headersTimeout / 4)),
        keepAliveTimeout: limits.keepAliveTimeout,
        noDelay: true,
      },
      (req, res) => void this.#onRequest(req, res),
    );
    // Node starts tracking connections (idle detection for closeIdleConnections, headersTimeout checks) on
    // 'listening'. This server never listens itself — sockets are handed to it — so it is told it does.
    this.#http.emit('listening');
    // Handling checkContinue ourselves means 100 Continue goes out only when a handler accepts the body, after
    // every check that could refuse it (RFC 9110 §10.1.1).
    this.#http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void this.#onRequest(req, res));
    this.#http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      log.debug({ err: err.message, code: err.code }, 'bad HTTP from a client');
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  /** Serve one HTTP/1.1 connection over any Duplex (a mux channel, a test pipe). No timeouts apply to it. */
  handleConnection(socket: Duplex): void {
    this.#http.emit('connection', socket);
  }

  /**
   * Resolves once the server can answer requests; rejects (DAV_ERR_STATE_UNAVAILABLE) when it never will: the
   * dead-property store under `stateDir` cannot be opened (a home that is not writable, a journal owned by
   * another user). Until then requests wait; after such a failure each is answered 503.
   */
  async ready(): Promise<void> {
    await this.#shared;
  }

  /** Listen on TCP (or TLS) and serve connections there, once ready(). Resolves with the bound address. */
  async listen(o: ListenOptions = {}): Promise<AddressInfo> {
    await this.ready();
    const host = o.host ?? '127.0.0.1';
    if (!o.auth && !o.allowUnauthenticatedRemote && !isLoopbackHost(host)) {
      throw new DavError(500, 'DAV_ERR_INSECURE_LISTEN', `refusing to serve ${host} without authentication; give auth, or bind 127.0.0.1`);
    }
    const onSocket = (socket: Duplex) => {
      if (o.auth) this.#auth.set(socket, o.auth);
      this.handleConnection(socket);
    };
    // node:tls is loaded only for a TLS listener: it costs 1.4 MiB of resident memory in any process that loads it.
    const server = o.tls
      ? (await import('node:tls')).createServer({ cert: o.tls.cert, key: o.tls.key }, onSocket)
      : net.createServer({ noDelay: true }, onSocket);
    if (o.tls) server.on('tlsClientError', (err) => this.#log.debug({ err: err.message }, 'TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#listeners.add(server);
    return server.address() as AddressInfo;
  }

  /** Stop listening, let requests in flight finish, close idle connections, then flush the property store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Stop accepting first; net.Server.close() only calls back once every connection is gone, so it is
      // awaited after the connections were closed.
      const stopped = [...this.#listeners].map((s) => new Promise<void>((r) => s.close(() => r())));
      this.#http.closeIdleConnections();
      if (this.#active > 0) await new Promise<void>((r) => (this.#idle = r));
      this.#http.closeAllConnections();
      // http.Server#close clears the connection-checking timer; it reports "not running", which is expected.
      this.#http.close(() => {});
      await Promise.all(stopped);
      await this.#cache?.close();
      const shared = await this.#shared.catch(() => null);
      await Promise.all([shared?.props.close(), shared?.locks.close()]);
    })();
    return this.#closing;
  }

  /** Abort now: every connection is destroyed, then the store is flushed. */
  async destroy(err?: Error): Promise<void> {
    if (err) this.#log.warn({ err: err.message }, 'DAV server destroyed');
    this.#http.closeAllConnections();
    for (const s of this.#listeners) s.close();
    this.#idle?.();
    await this.close();
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#active++;
    res.setHeader('Server', this.#serverName);
    let ctx: RequestContext | null = null;
    try {
      const shared = await this.#forRequests;
      const litmus = req.headers['x-litmus'];
      const log = litmus ? shared.log.child({ litmus }) : shared.log;
      log.debug({ method: req.method, url: req.url }, 'request');
      if (this.#closing) res.setHeader('Connection', 'close');
      const auth = req.socket && this.#auth.get(req.socket);
      if (auth && !(await this.#authenticate(auth, req, res, log))) return;
      ctx = new RequestContext(shared, req, res, log);
      const handler = METHODS[req.method ?? ''];
      if (!handler) throw new DavError(405, 'DAV_ERR_METHOD', `${req.method} is not supported here`);
      if (handler.write) checkWritable(ctx);
      // What other processes serving this folder locked or unlocked since (one stat(2) when nothing): every
      // request that checks or shows locks. GET and HEAD without an If header, the hot path, never look.
      if (handler.write || req.method === 'PROPFIND' || req.headers.if !== undefined) await shared.locks.sync();
      // A client that submits the token of a lock whose server went away (a restarted `share`) keeps its lock.
      if (req.headers.if !== undefined && !ctx.dav.readOnly) await shared.locks.claim(ctx.submittedTokens());
      await handler.handle(ctx);
    } catch (err) {
      if (ctx) sendError(ctx, err);
      else this.#failEarly(res, err);
    } finally {
      if (--this.#active === 0 && this.#idle) this.#idle();
    }
  }

  /**
   * Whether `req` carries credentials that `auth` accepts; if not, it has been answered: 401 with a challenge, or 429
   * while its address waits after too many failed logins (login-throttle.ts).
   */
  async #authenticate(auth: Authenticator, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<boolean> {
    // No Authorization is the usual first request, answered with a challenge: neither a guess nor a failed login.
    if (req.headers.authorization === undefined) return (await auth.check(req)) !== null || this.#challenge(auth, req, res);
    const address = req.socket.remoteAddress ?? 'unknown';
    // The throttle when these credentials are a guess. Those whose answer is remembered cost nothing and tell nothing
    // new: they pass uncounted. That is asked only of an address with failures, where it can matter: `known` hashes
    // (Basic) or parses (Digest) the header, as `check` does again, and logged-in clients' requests are the hot path.
    const throttle = this.#loginThrottle && (!this.#loginThrottle.hasFailed(address) || !auth.known?.(req)) ? this.#loginThrottle : null;
    const wait = throttle ? throttle.admit(address) : 0;
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      this.#refuse(req, res, 429, { 'Retry-After': String(seconds) }, `too many failed logins from this address; try again in ${seconds} s\n`);
      return false;
    }
    let refusal: Refusal | null = null;
    let waits = 0;
    try {
      if (await auth.check(req)) return true;
      refusal = auth.refusal ? auth.refusal(req) : { reason: 'refused' };
    } finally {
      // Settled whatever happened: a check that threw (a busy hash worker) refused nothing.
      if (throttle) waits = throttle.settle(address, refusal !== null);
    }
    if (refusal) this.#loginFailures.note(log, address, refusal);
    if (waits > 0) log.warn({ address, waitSeconds: Math.ceil(waits / 1000) }, 'too many failed logins: this address waits before its next one is checked');
    return this.#challenge(auth, req, res);
  }

  /** Answers 401 with the authenticator's challenges. */
  #challenge(auth: Authenticator, req: IncomingMessage, res: ServerResponse): false {
    res.setHeader('WWW-Authenticate', auth.challenges(req));
    this.#refuse(req, res, 401, {}, 'authentication required\n');
    return false;
  }

  /** Answers a request refused before dispatch, closing the connection when the request has a body nobody reads. */
  #refuse(req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, text: string): void {
    // An unread body must not be taken for the next request (and a client waiting on 100-continue will not send
    // it): close after answering, as respond.ts does for errors.
    const body = req.headers['content-length'] ? Number(req.headers['content-length']) > 0 : req.headers['transfer-encoding'] !== undefined;
    send(res, status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', ...(body ? { Connection: 'close' } : {}) }, text);
  }

  /** Errors before a RequestContext exists: a bad request path, or a store that failed to open. */
  #failEarly(res: ServerResponse, err: unknown): void {
    const status = err instanceof DavError ? err.status : 500;
    if (!(err instanceof DavError)) this.#log.error({ err }, 'request failed before dispatch');
    else if (err.code === 'DAV_ERR_STATE_UNAVAILABLE' && !this.#storeFailureLogged) {
      // The operator's log gets the store's path and error once (the cause), the client only the 503.
      this.#storeFailureLogged = true;
      this.#log.error({ err: (err.cause as Error).message }, 'requests are refused (503) until the server is given a writable stateDir');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close', ...errorHeaders(err) }, err instanceof DavError ? err.message + '\n' : 'internal error; see the server log\n');
  }
}
