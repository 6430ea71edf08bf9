// Where an HTTP/1.x connection stands in its message framing (RFC 9112 §6), followed on both directions without
// holding any body: the guest proxy needs it to know what a close from the host means. The host's server closing
// between responses is routine (spice-gtk closes after every response) and the local connection must stay, as
// spice-webdavd keeps it; but a close in the middle of a response means the rest will never come, and keeping
// the connection then leaves the local client waiting for bytes until its own timeout (minutes for davfs2).
//
// Pure: no I/O, no timers. Anything it cannot follow (not HTTP, a head over the bound, a protocol upgrade,
// CONNECT) makes it say 'unknown' for good, and the proxy then keeps the reference behaviour.

/** What the server closing its side would mean now. */
export type CloseMeaning =
  /** Between responses: nothing is cut (the reference behaviour applies: keep the connection). */
  | 'idle'
  /** A response has begun and its framing says more is due: it is cut short. */
  | 'truncated'
  /** A response whose body runs until the close (no length, not chunked): the close is its end. */
  | 'ends-response'
  /**
   * Between responses, the last of which said the connection ends after it (`Connection: close`, or HTTP/1.0
   * without keep-alive, on either side): the close is the announced one, and the client may be waiting for it.
   */
  | 'announced'
  /** The bytes are not HTTP this tracker can follow (or a protocol upgrade took over). */
  | 'unknown';

/** How a message's body is delimited (RFC 9112 §6.3). */
type Body = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' } | { kind: 'opaque' };

/** A body the tracker cannot follow: its framer gives up, and with it the whole exchange (see #lost). */
const OPAQUE: Body = { kind: 'opaque' };

/** A head or chunk line longer than this is not followed: the tracker gives up rather than buffer it. */
const MAX_HEAD = 64 * 1024;
/** Requests sent and not yet answered that the tracker remembers the method of (pipelining depth). */
const MAX_PENDING = 1024;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
  Opaque,
  Lost,
}

const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/\d\.\d$/;
const STATUS_LINE = /^HTTP\/\d\.\d (\d{3})(?: .*)?$/;

/** The parts of a head the framing depends on. */
interface Head {
  startLine: string;
  contentLength: number | 'invalid' | undefined;
  /** The last transfer coding, lower-cased; undefined without Transfer-Encoding. */
  lastCoding: string | undefined;
  /** The sender means to keep the connection after this message (RFC 9112 §9.3). */
  persistent: boolean;
}

function parseHead(lines: string[]): Head {
  let contentLength: Head['contentLength'];
  let codings: string | undefined;
  let connection = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      // A list of equal values is one length (RFC 9110 §8.6); anything else cannot be framed.
      for (const part of value.split(',')) {
        const n = /^\d{1,15}$/.test(part.trim()) ? Number(part.trim()) : NaN;
        if (Number.isNaN(n) || (contentLength !== undefined && contentLength !== n)) contentLength = 'invalid';
        else contentLength = n;
      }
    } else if (name === 'transfer-encoding') {
      codings = codings === undefined ? value : `${codings},${value}`;
    } else if (name === 'connection') {
      connection += `,${value.toLowerCase()}`;
    }
  }
  const lastCoding = codings?.split(',').pop()?.trim().toLowerCase();
  const startLine = lines[0] as string;
  const options = new Set(connection.split(',').map((o) => o.trim()));
  // HTTP/1.1 and later persist unless told to close; HTTP/1.0 only when asked to keep alive.
  // The version ends a request line and starts a status line (a target may contain "HTTP/1.0" too).
  const http10 = /^HTTP\/1\.0 | HTTP\/1\.0$/.test(startLine);
  const persistent = !options.has('close') && (!http10 || options.has('keep-alive'));
  return { startLine, contentLength, lastCoding, persistent };
}

/** One direction's framing: heads are read line by line (bounded), bodies are only counted. */
class MessageFramer {
  state = State.Head;
  readonly #startLine: RegExp;
  readonly #onHead: (lines: string[]) => Body;
  #lines: string[] = [];
  #partial = '';
  #headSize = 0;
  #remaining = 0;

  constructor(startLine: RegExp, onHead: (lines: string[]) => Body) {
    this.#startLine = startLine;
    this.#onHead = onHead;
  }

  /** A message has begun and is not complete. */
  get inMessage(): boolean {
    return this.state !== State.Head || this.#lines.length > 0 || (this.#partial !== '' && this.#partial !== '\r');
  }

  /** The start line seen so far, whole or in part ('' between messages). */
  get startLine(): string {
    return this.#lines[0] ?? this.#partial;
  }

  giveUp(state: State.Opaque | State.Lost): void {
    this.state = state;
    this.#lines = [];
    this.#partial = '';
  }

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case State.Length:
        case State.ChunkData: {
          const n = Math.min(this.#remaining, chunk.length - i);
          i += n;
          this.#remaining -= n;
          if (this.#remaining > 0) break;
          if (this.state === State.Length) this.#complete();
          else this.state = State.ChunkEnd;
          break;
        }
        case State.Head:
        case State.ChunkSize:
        case State.ChunkEnd:
        case State.Trailers: {
          const end = chunk.indexOf(0x0a, i);
          const stop = end < 0 ? chunk.length : end;
          this.#headSize += stop - i;
          if (this.#headSize > MAX_HEAD) return this.giveUp(State.Lost);
          this.#partial += chunk.toString('latin1', i, stop);
          i = stop;
          if (end < 0) break;
          i++;
          const line = this.#partial.endsWith('\r') ? this.#partial.slice(0, -1) : this.#partial;
          this.#partial = '';
          this.#line(line);
          break;
        }
        default:
          // UntilClose, Opaque, Lost: nothing more to follow.
          return;
      }
    }
  }

  #line(line: string): void {
    switch (this.state) {
      case State.Head:
        if (line !== '') {
          // Not HTTP: said at the first line, not after 64 KiB of a protocol without empty lines.
          if (this.#lines.length === 0 && !this.#startLine.test(line)) return this.giveUp(State.Lost);
          this.#lines.push(line);
        } else if (this.#lines.length > 0) this.#endHead();
        // An empty line before a start line is tolerated (RFC 9112 §2.2).
        else this.#headSize = 0;
        return;
      case State.ChunkSize: {
        // chunk-size [ chunk-ext ]; the extension is ignored.
        const hex = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?[ \t]*$/.exec(line)?.[1];
        if (hex === undefined) return this.giveUp(State.Lost);
        this.#remaining = parseInt(hex, 16);
        this.#headSize = 0;
        this.state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
        return;
      }
      case State.ChunkEnd:
        if (line !== '') return this.giveUp(State.Lost);
        this.#headSize = 0;
        this.state = State.ChunkSize;
        return;
      case State.Trailers:
        if (line === '') this.#complete();
        return;
    }
  }

  #endHead(): void {
    const body = this.#onHead(this.#lines);
    this.#lines = [];
    this.#headSize = 0;
    switch (body.kind) {
      case 'none':
        return this.#complete();
      case 'length':
        if (body.length === 0) return this.#complete();
        this.#remaining = body.length;
        this.state = State.Length;
        return;
      case 'chunked':
        this.state = State.ChunkSize;
        return;
      case 'close':
        this.state = State.UntilClose;
        return;
      case 'opaque':
        return this.giveUp(State.Opaque);
    }
  }

  #complete(): void {
    this.state = State.Head;
    this.#headSize = 0;
  }
}

/**
 * Follows one HTTP/1.x connection: `request()` gets what the client sent, `response()` what the server sent, in
 * order per direction; `closeMeaning()` says what a close from the server would mean at this point.
 */
export class HttpExchangeTracker {
  /** Requests sent and not yet answered, oldest first: HEAD's answer has no body, a closing one ends the connection. */
  readonly #pending: { method: string; persistent: boolean }[] = [];
  /** The last final response, or its request, said the connection ends after it. */
  #announced = false;
  readonly #requests = new MessageFramer(REQUEST_LINE, (lines) => this.#requestBody(lines));
  readonly #responses = new MessageFramer(STATUS_LINE, (lines) => this.#responseBody(lines));

  request(chunk: Buffer): void {
    if (!this.#lost) this.#requests.feed(chunk);
  }

  response(chunk: Buffer): void {
    if (!this.#lost) this.#responses.feed(chunk);
  }

  /** Either direction stopped being followed: the exchange as a whole is then not followed. */
  get #lost(): boolean {
    return this.#requests.state >= State.Opaque || this.#responses.state >= State.Opaque;
  }

  closeMeaning(): CloseMeaning {
    const responses = this.#responses;
    if (this.#lost) return 'unknown';
    if (responses.state === State.UntilClose) return 'ends-response';
    if (!responses.inMessage) return this.#announced ? 'announced' : 'idle';
    // A head cut before its status line could be read whole is only called a cut when it is one in the making.
    if (responses.state === State.Head && !responses.startLine.startsWith('HTTP/')) return 'unknown';
    return 'truncated';
  }

  #requestBody(lines: string[]): Body {
    const head = parseHead(lines);
    const method = head.startLine.slice(0, head.startLine.indexOf(' '));
    // After CONNECT the bytes may be a tunnel's: not followed (nor is it a WebDAV client's business).
    if (method === 'CONNECT' || this.#pending.length >= MAX_PENDING) return OPAQUE;
    this.#pending.push({ method, persistent: head.persistent });
    if (head.lastCoding !== undefined) return head.lastCoding === 'chunked' ? { kind: 'chunked' } : OPAQUE;
    if (head.contentLength === 'invalid') return OPAQUE;
    return head.contentLength === undefined ? { kind: 'none' } : { kind: 'length', length: head.contentLength };
  }

  #responseBody(lines: string[]): Body {
    const head = parseHead(lines);
    const code = Number(STATUS_LINE.exec(head.startLine)?.[1]);
    // 101 hands the connection to another protocol; other 1xx are interim and answer no request yet.
    if (code === 101) return OPAQUE;
    if (code < 200) return { kind: 'none' };
    // A response the client did not ask for (a 408 before any request, say) is framed like a GET's.
    const { method, persistent } = this.#pending.shift() ?? { method: 'GET', persistent: true };
    this.#announced = !persistent || !head.persistent;
    if (method === 'HEAD' || code === 204 || code === 304) return { kind: 'none' };
    if (head.lastCoding !== undefined) return head.lastCoding === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
    if (head.contentLength === 'invalid') return OPAQUE;
    return head.contentLength === undefined ? { kind: 'close' } : { kind: 'length', length: head.contentLength };
  }
}
