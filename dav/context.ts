/**
 * Per-request state handed to every method handler: the parsed target path, the server's shared parts, and
 * helpers to read bodies within limits. Handlers throw DavError; `respond.ts` answers it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../src/log.js';
import { DavError } from './errors.js';
import { parseUrlPath, type DavPath } from './paths.js';
import type { XmlElement } from './xml.js';
import { parseIf, type IfList } from './headers/if.js';
import type { DavLimits } from './options.js';
import type { Entry, Storage } from './storage/backend.js';
import type { LockManager } from './locks.js';
import type { DeadPropStore } from './props/dead-store.js';
import type { Transfer } from './transfer.js';
import type { BufferPool } from './buffer-pool.js';
import type { ClientHints } from './client-hints.js';

/** The parts of a DavServer every request shares. */
export interface DavShared {
  storage: Storage;
  locks: LockManager;
  props: DeadPropStore;
  limits: DavLimits;
  readOnly: boolean;
  log: Logger;
  /** Display name of the share root (its folder name). */
  rootName: string;
  /** Announce a GET/PUT body as it starts. */
  startTransfer(t: Transfer): void;
  /** True when someone listens to 'transfer' events (small bodies skip building a Transfer otherwise). */
  watchingTransfers(): boolean;
  /** Buffers for GET bodies. */
  buffers: BufferPool;
  /** Known client limits, said once in the log. */
  hints: ClientHints;
}

/** One request being served. */
export class RequestContext {
  readonly dav: DavShared;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The decoded, normalised request path. */
  readonly path: DavPath;
  /** Whether the request URI ended with a slash. */
  readonly trailingSlash: boolean;
  readonly log: Logger;
  #ifLists: IfList[] | null | undefined;
  #bodyRead = false;
  #entry: Promise<Entry | null> | undefined;

  constructor(dav: DavShared, req: IncomingMessage, res: ServerResponse, log: Logger) {
    this.dav = dav;
    this.req = req;
    this.res = res;
    this.log = log;
    const { path, trailingSlash } = parseUrlPath(req.url ?? '/');
    this.path = path;
    this.trailingSlash = trailingSlash;
  }

  /** A request header as one string (Node joins repeated ones). */
  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  /** The target resource, looked up once per request. */
  entry(): Promise<Entry | null> {
    this.#entry ??= this.dav.storage.stat(this.path);
    return this.#entry;
  }

  /** Forget the cached entry (after the handler changed the resource). */
  invalidateEntry(): void {
    this.#entry = undefined;
  }

  /** The parsed If header, or null when there is none. 400 when malformed. */
  ifLists(): IfList[] | null {
    if (this.#ifLists === undefined) {
      const v = this.header('if');
      this.#ifLists = v === undefined ? null : parseIf(v);
    }
    return this.#ifLists;
  }

  /** Lock tokens the request submits: every state token named (not negated) in its If header. */
  submittedTokens(): Set<string> {
    const out = new Set<string>();
    for (const list of this.ifLists() ?? []) for (const c of list.conditions) if (c.token !== undefined && !c.not) out.add(c.token);
    return out;
  }

  /** True when the request carries a body (Content-Length > 0 or chunked). */
  hasBody(): boolean {
    const len = this.req.headers['content-length'];
    if (len !== undefined) return Number(len) > 0;
    return this.req.headers['transfer-encoding'] !== undefined;
  }

  /** True once the body was (or is being) consumed; respond.ts closes the connection otherwise on errors. */
  get bodyRead(): boolean {
    return this.#bodyRead;
  }

  /** Tell a client waiting on `Expect: 100-continue` to send the body, and mark the body as consumed. */
  acceptBody(): void {
    if (this.#bodyRead) return;
    this.#bodyRead = true;
    if (/100-continue/i.test(this.header('expect') ?? '') && !this.res.headersSent) this.res.writeContinue();
  }

  /** Read a small body whole, refusing more than `max` bytes with 413. */
  async readBody(max: number): Promise<Buffer> {
    const declared = Number(this.req.headers['content-length'] ?? 0);
    if (declared > max) throw tooLarge(max);
    this.acceptBody();
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > max) throw tooLarge(max);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, n);
  }

  /** Read and parse an XML body; null when the body is empty. 400 malformed, 413 too large. */
  async readXml(): Promise<XmlElement | null> {
    if (!this.hasBody()) {
      this.#bodyRead = true;
      return null;
    }
    const body = await this.readBody(this.dav.limits.maxXmlBytes);
    const text = body.toString('utf8');
    if (text.trim() === '') return null;
    // Loaded on first use: see xml.ts for why the parser is kept out of the start-up path.
    const { parseXml } = await import('./xml-parse.js');
    return parseXml(text, { maxDepth: this.dav.limits.maxXmlDepth });
  }

  /** The request's own URL origin, for Location headers and comparing tagged If lists. */
  get host(): string | undefined {
    return this.req.headers.host;
  }
}

function tooLarge(max: number): DavError {
  return new DavError(413, 'DAV_ERR_BODY_TOO_LARGE', `XML request bodies are limited to ${max} bytes (option maxXmlBytes)`);
}
