import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FRAME_HEADER_SIZE } from '../../mux/index.js';
import type { MuxChannel } from '../../mux/index.js';
import { FdPortStream } from './fd-port-stream.js';

// The guest's upload path (local client → port) without a copy or an allocation per read. Under emulation the
// guest's CPU decides the speed of uploads, and the ordinary path (socket 'data' → pipe → channel.write →
// frame → gather header and payload into one port write) spent most of it on the 64 KiB buffer libuv allocates
// per read (page faults, garbage collection) and on gathering: memcpy runs at about 120 MB/s in a TCG guest.
// Here the socket reads straight into buffers that keep FRAME_HEADER_SIZE bytes free in front, the mux writes
// the frame header there (MuxChannel.writeInPlace), and header + payload leave in one write; the buffer is
// reused once the port has taken it.

/** A full read makes a 64 KiB frame: two whole 32 KiB port writes (virtio_console's most per write()). */
const READ_SIZE = 64 * 1024 - FRAME_HEADER_SIZE;
/**
 * Frames a connection may have on their way to the port before its socket stops reading (its memory bound),
 * and how few let it read again: the gap keeps the socket from stopping and restarting (two epoll_ctl calls)
 * around every frame.
 */
const MAX_IN_FLIGHT = 8;
const RESUME_AT = 4;

/** net.Socket's `onread` internals: the symbols under which a socket keeps its user buffer, generator, callback. */
interface UserBufferSymbols {
  buffer: symbol;
  generator: symbol;
  callback: symbol;
}

let symbols: UserBufferSymbols | null | undefined;

/**
 * Node reads into caller-supplied memory only for sockets created with the `onread` option, which net.Server
 * does not offer for accepted connections. The same three fields the constructor sets are found on a probe
 * socket (by value, then checked by name) and set on the accepted socket, as its constructor would have.
 * Null when this Node keeps them differently: the caller then falls back to the ordinary path.
 */
function userBufferSymbols(): UserBufferSymbols | null {
  if (symbols !== undefined) return symbols;
  const buffer = (): Buffer => Buffer.alloc(1);
  const callback = (): boolean => true;
  // `onread` is documented for net.connect() and new Socket(), though @types/node lists it only for connect.
  const probe = new Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof Socket>[0]);
  const fields = probe as unknown as Record<symbol, unknown>;
  const own = Object.getOwnPropertySymbols(probe);
  const find = (name: string, value: unknown): symbol | undefined => own.find((s) => s.description === name && fields[s] === value);
  const found = { buffer: find('kBuffer', true), generator: find('kBufferGen', buffer), callback: find('kBufferCb', callback) };
  probe.destroy();
  symbols = found.buffer && found.generator && found.callback ? (found as UserBufferSymbols) : null;
  return symbols;
}

/**
 * Whether the pump may feed frames to `port`. It reuses a buffer as soon as its frame's write called back, which
 * is safe only where that callback means the port copied the bytes out: a socket (libuv wrote them to the
 * kernel; the poll-based virtio stream is one too) or FdPortStream (write(2) returned). Any other Duplex, such
 * as the in-memory transport of `spicedav demo`, may hand the buffer itself on, and the next read into it would
 * rewrite bytes the host has not consumed yet: corrupted uploads.
 */
export function portCopiesWrites(port: Duplex): boolean {
  return port instanceof Socket || port instanceof FdPortStream;
}

/**
 * Sends what `socket` receives to `channel` as in-place frames, ending the channel at the socket's EOF, with at
 * most MAX_IN_FLIGHT frames outstanding (the socket stops reading meanwhile). `onChunk` sees each read before it
 * is sent (and must not keep it: the buffer is reused).
 * Returns false, changing nothing, when this Node does not allow it: then pipe the socket instead. The socket
 * must not have started reading (net.Server's pauseOnConnect), and the channel's transport must pass
 * {@link portCopiesWrites}.
 */
export function pumpUpload(socket: Socket, channel: MuxChannel, onChunk: (chunk: Buffer) => void): boolean {
  const sym = userBufferSymbols();
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } | null })._handle;
  if (!sym || typeof handle?.useUserBuffer !== 'function') return false;

  const free: Buffer[] = [];
  let inFlight = 0;
  let stopped = false;
  const take = (): Buffer => free.pop() ?? Buffer.allocUnsafeSlow(FRAME_HEADER_SIZE + READ_SIZE).subarray(FRAME_HEADER_SIZE);
  const onRead = (nread: number, buf: Buffer): boolean => {
    const chunk = buf.subarray(0, nread);
    onChunk(chunk);
    inFlight++;
    channel.writeInPlace(chunk, () => {
      inFlight--;
      free.push(buf);
      if (stopped && inFlight <= RESUME_AT && !socket.destroyed) {
        stopped = false;
        socket.resume();
      }
    });
    // false: Node stops reading the socket (readStop) until resume() above.
    stopped = inFlight >= MAX_IN_FLIGHT;
    return !stopped;
  };
  const fields = socket as unknown as Record<symbol, unknown>;
  const first = take();
  fields[sym.buffer] = first;
  fields[sym.generator] = take;
  fields[sym.callback] = onRead;
  handle.useUserBuffer(first);
  socket.once('end', () => channel.end());
  return true;
}
