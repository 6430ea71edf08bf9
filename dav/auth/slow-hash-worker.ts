/**
 * The worker thread behind slow-hash.ts: checks one password against one bcrypt or SHA-crypt hash per message,
 * in turn. Pure computation, no I/O: it answers `{ id, ok }`, or `{ id, error }` for a hash it cannot read.
 */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { sameString } from './crypt-common.js';
import { parseShaCryptSetting, shaCrypt } from './sha-crypt.js';

/** A request from the main thread. */
export interface SlowHashRequest {
  id: number;
  password: string;
  hash: string;
}

/** The answer to a {@link SlowHashRequest}. */
export type SlowHashAnswer = { id: number; ok: boolean } | { id: number; error: string };

function verify(password: string, hash: string): boolean {
  if (hash.startsWith('$2')) return bcrypt.compareSync(password, hash);
  const setting = parseShaCryptSetting(hash);
  if (!setting) throw new Error(`not a bcrypt or SHA-crypt hash: ${hash.slice(0, 4)}…`);
  return sameString(shaCrypt(password, setting), hash);
}

parentPort?.on('message', ({ id, password, hash }: SlowHashRequest) => {
  let answer: SlowHashAnswer;
  try {
    answer = { id, ok: verify(password, hash) };
  } catch (err) {
    answer = { id, error: (err as Error).message };
  }
  parentPort?.postMessage(answer);
});
