import { EventEmitter } from 'node:events';

/**
 * One GET or PUT body in flight, emitted by DavServer as 'transfer' when the body starts, so a UI can show live
 * progress. `bytes` grows as data moves; 'end' fires once with the error if the transfer failed or was cut.
 */
export class Transfer extends EventEmitter {
  /** 'GET' or 'PUT'. */
  readonly method: string;
  /** The DAV path (decoded). */
  readonly path: string;
  /** 'out' for downloads (GET), 'in' for uploads (PUT). */
  readonly direction: 'in' | 'out';
  /** Expected body size when known. */
  readonly total: number | undefined;
  /** Bytes moved so far. */
  bytes = 0;
  #ended = false;

  constructor(method: string, path: string, direction: 'in' | 'out', total: number | undefined) {
    super();
    this.method = method;
    this.path = path;
    this.direction = direction;
    this.total = total;
  }

  /** True once 'end' was emitted. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Emit 'end' (once). */
  finish(err?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.emit('end', err);
  }
}
