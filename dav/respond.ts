/**
 * Writing responses. `sendError` is the one place where errors become HTTP: a DavError answers with its own
 * status (and RFC 4918 condition body), anything else is logged and answered 500. `MultiStatus` streams a 207
 * response by response with backpressure, so a PROPFIND over a huge collection never sits whole in memory.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { DavError } from './errors.js';
import { escapeText } from './xml.js';
import type { RequestContext } from './context.js';

/** Methods a read-only share allows. */
export const READ_METHODS = 'OPTIONS, GET, HEAD, PROPFIND';
/** Every method served. */
export const ALL_METHODS = 'OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK';

/** `HTTP/1.1 200 OK` for a status code, as used inside multistatus bodies. */
export const statusLine = (status: number): string => `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`;

const XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n';

/** Answer with a status, optional headers and an optional small body. */
export function send(res: ServerResponse, status: number, headers: Record<string, string | number> = {}, body?: string | Buffer): void {
  const payload = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...headers, 'Content-Length': payload?.length ?? 0 });
  res.end(payload);
}

/** Answer with an XML document. */
export function sendXml(res: ServerResponse, status: number, xml: string, headers: Record<string, string | number> = {}): void {
  send(res, status, { 'Content-Type': 'application/xml; charset=utf-8', ...headers }, XML_HEAD + xml);
}

/** The headers an error asks for itself: `Retry-After` when it passes by itself. */
export function errorHeaders(err: unknown): Record<string, string | number> {
  return err instanceof DavError && err.retryAfter !== undefined ? { 'Retry-After': err.retryAfter } : {};
}

/** The single mapping of errors to HTTP responses. */
export function sendError(ctx: RequestContext, err: unknown): void {
  const { res } = ctx;
  const dav = err instanceof DavError ? err : null;
  if (!dav) ctx.log.error({ err, method: ctx.req.method, url: ctx.req.url }, 'request failed unexpectedly');
  // A 5xx is the server's side failing (a full disk, the share root gone): the host user must see it.
  else ctx.log[dav.status >= 500 ? 'warn' : 'debug']({ code: dav.code, status: dav.status, method: ctx.req.method, url: ctx.req.url }, dav.message);
  if (res.headersSent) {
    // Too late for a status: cut the connection so the client sees the body is incomplete.
    res.destroy(dav ?? (err as Error));
    return;
  }
  const status = dav?.status ?? 500;
  const headers = errorHeaders(dav);
  // A body we did not read would be taken for the next request; and a client waiting on 100-continue may
  // never send it. Closing the connection is the safe answer to both.
  if (!ctx.bodyRead && ctx.hasBody()) headers.Connection = 'close';
  if (status === 405) headers.Allow = ctx.dav.readOnly ? READ_METHODS : ALL_METHODS;
  if (dav?.condition) {
    const hrefs = (dav.condition.hrefs ?? []).map((h) => `<D:href>${escapeText(h)}</D:href>`).join('');
    const el = hrefs ? `<D:${dav.condition.name}>${hrefs}</D:${dav.condition.name}>` : `<D:${dav.condition.name}/>`;
    sendXml(res, status, `<D:error xmlns:D="DAV:">${el}</D:error>`, headers);
    return;
  }
  const text = status >= 500 && !dav ? 'internal error; see the server log' : (dav?.message ?? '');
  send(res, status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }, text ? text + '\n' : undefined);
}

/** A streamed 207 Multi-Status body. */
export class MultiStatus {
  readonly #res: ServerResponse;
  #buf = '';
  #started = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  /** Append one `<D:response>`; resolves when the socket can take more (backpressure). */
  async add(responseXml: string): Promise<void> {
    if (!this.#started) {
      this.#started = true;
      this.#res.writeHead(207, { 'Content-Type': 'application/xml; charset=utf-8' });
      this.#buf = XML_HEAD + '<D:multistatus xmlns:D="DAV:">';
    }
    this.#buf += responseXml;
    // Batch small responses into writes of ~64 KiB: one write per response would cost a syscall each.
    if (this.#buf.length >= 65536) await this.#flush();
  }

  /** Close the document and the response. */
  async end(): Promise<void> {
    if (!this.#started) await this.add('');
    this.#buf += '</D:multistatus>\n';
    await this.#flush();
    this.#res.end();
  }

  async #flush(): Promise<void> {
    const chunk = this.#buf;
    this.#buf = '';
    if (this.#res.destroyed) throw new DavError(499, 'DAV_ERR_CLIENT_GONE', 'the client went away during a multistatus response');
    if (!this.#res.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          this.#res.off('drain', done);
          this.#res.off('close', onClose);
          if (err) reject(err);
          else resolve();
        };
        const onClose = () => done(new DavError(499, 'DAV_ERR_CLIENT_GONE', 'the client went away during a multistatus response'));
        this.#res.on('drain', done);
        this.#res.on('close', onClose);
      });
    }
  }
}

/** One `<D:response>` with a plain status (DELETE/COPY/MOVE member failures). */
export function statusResponse(href: string, status: number, error?: DavError): string {
  const cond = error?.condition ? `<D:error><D:${error.condition.name}/></D:error>` : '';
  return `<D:response><D:href>${escapeText(href)}</D:href><D:status>${statusLine(status)}</D:status>${cond}</D:response>`;
}
