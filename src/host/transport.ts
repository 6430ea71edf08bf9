import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/**
 * The phases of a transport, for logs and the status display:
 * - `connecting`: reaching the VM (SPICE link, socket connect);
 * - `waiting`: reachable, but the guest side is not there yet (port not opened by the guest daemon, no webdav
 *   port on the VM, a viewer holds the VM); `detail`/`error` say which;
 * - `linked`: a 'link' stream is live;
 * - `retrying`: the connection failed or was lost; trying again in `retryInMs`;
 * - `closed`: stopped for good, by `close()` or because of `error` (a wrong password, a bad certificate...).
 */
export type TransportStateName = 'connecting' | 'waiting' | 'linked' | 'retrying' | 'closed';

/** A transport's state change, as emitted with 'state'. */
export interface TransportState {
  state: TransportStateName;
  /** One line for people ("waiting for the guest to open org.spice-space.webdav.0"). */
  detail?: string;
  /** Why, when something failed; its `code` is stable (SPICE_ERR_*, HOST_ERR_*). */
  error?: Error;
  /** With `retrying`: the delay before the next attempt. */
  retryInMs?: number;
  /**
   * With `retrying`: the failure is the previous attempt's again (the VM is still off, the viewer still
   * connected). Not news: logged at debug level only, and the CLI prints nothing for it.
   */
  repeated?: boolean;
}

/** The events every transport emits. */
export interface TransportEvents {
  /** The guest side is reachable: run a host-role MuxSession over `stream` until it ends. */
  link: [stream: Duplex];
  state: [state: TransportState];
}

/**
 * How `Share` reaches the guest's webdav port: over SPICE, over a QEMU chardev socket, or in memory. A
 * transport emits 'link' each time the guest side becomes reachable, with a Duplex carrying mux frames that
 * ends when it is no longer reachable, and 'state' on every phase change. It reconnects by itself until
 * `close()`.
 */
export interface Transport extends EventEmitter {
  /** Start connecting (once; later calls do nothing). */
  start(): void;
  /** Stop: end the current link, stop reconnecting, emit state 'closed'. Idempotent. */
  close(): Promise<void>;
  /** The latest state (also emitted as 'state'). */
  readonly state: TransportState;
}
