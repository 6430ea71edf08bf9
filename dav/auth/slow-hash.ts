/**
 * Password checks against bcrypt and SHA-crypt hashes, run in a worker thread. These schemes are slow on purpose:
 * bcrypt takes about 0.3 s in JavaScript at cost 11 on a 2-core machine, twice that per cost step above, and a
 * SHA-crypt setting may ask for a billion rounds. On the main thread every login a client tries, and every guess
 * an attacker sends, would pause everyone else's transfers; in the worker the checks take one core, one after
 * another, and the event loop only waits for the answer. The authenticator remembers what it checked, so a client
 * pays once.
 *
 * The worker starts with the first check and ends after `idleMs` without one (it holds a few MiB); it keeps the
 * process alive only while a check is under way. More than `maxQueued` checks waiting are refused with a 503 and
 * Retry-After, so a flood of guesses cannot grow memory without bound.
 */
import { Worker } from 'node:worker_threads';
import { DavError } from '../errors.js';
import type { SlowHashAnswer, SlowHashRequest } from './slow-hash-worker.js';

/** Bounds of a {@link SlowHashChecker}. */
export interface SlowHashOptions {
  /** Checks that may wait for the worker at once; more are refused (503). Default 256. */
  maxQueued?: number;
  /** How long the worker stays without a check before it ends, in ms. Default 10,000. */
  idleMs?: number;
}

interface Pending {
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

/** A worker thread that checks passwords against bcrypt and SHA-crypt hashes, in turn. */
export class SlowHashChecker {
  readonly #maxQueued: number;
  readonly #idleMs: number;
  readonly #pending = new Map<number, Pending>();
  #worker: Worker | null = null;
  #nextId = 0;
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(options: SlowHashOptions = {}) {
    this.#maxQueued = options.maxQueued ?? 256;
    this.#idleMs = options.idleMs ?? 10_000;
  }

  /** Whether the worker thread is running (it starts with a check and ends when idle). */
  get running(): boolean {
    return this.#worker !== null;
  }

  /** Whether `password` matches `hash` (`$2…$` bcrypt, `$5$`/`$6$` SHA-crypt). */
  verify(password: string, hash: string): Promise<boolean> {
    if (this.#pending.size >= this.#maxQueued) {
      return Promise.reject(new DavError(503, 'DAV_ERR_AUTH_BUSY', `${this.#pending.size} password checks are waiting; try again shortly`, { retryAfter: 1 }));
    }
    const worker = this.#worker ?? this.#start();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#pending.size === 0) worker.ref();
    const id = this.#nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, password, hash } satisfies SlowHashRequest);
    });
  }

  /** Ends the worker now; checks under way fail. A later check starts a new one. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#stopped(worker, new Error('the password checker was closed'));
    await worker.terminate();
  }

  #start(): Worker {
    const worker = new Worker(new URL('./slow-hash-worker.js', import.meta.url));
    worker.on('message', (answer: SlowHashAnswer) => this.#answered(worker, answer));
    // Neither should happen (the worker catches what a check throws): out of memory, or a broken install.
    worker.on('error', (err) => this.#stopped(worker, err));
    worker.on('exit', (code) => this.#stopped(worker, new Error(`the password checker's thread ended (exit code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #answered(worker: Worker, answer: SlowHashAnswer): void {
    const pending = this.#pending.get(answer.id);
    if (!pending || worker !== this.#worker) return;
    this.#pending.delete(answer.id);
    if ('error' in answer) pending.reject(new Error(answer.error));
    else pending.resolve(answer.ok);
    if (this.#pending.size > 0) return;
    worker.unref();
    this.#idleTimer = setTimeout(() => void this.close(), this.#idleMs).unref();
  }

  /** Forget `worker` (if it is still the current one), failing what it had not answered. */
  #stopped(worker: Worker, err: Error): void {
    if (worker !== this.#worker) return;
    this.#worker = null;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}

/** The checker the authenticators share: one worker for the process. */
export const slowHashes = new SlowHashChecker();
