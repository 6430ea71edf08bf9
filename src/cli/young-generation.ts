import { setFlagsFromString } from 'node:v8';

/**
 * Keeps V8's young generation at its starting size (1 MiB a semi-space) for the life of the process. V8 grows
 * it, up to 16 MiB a semi-space, once the bytes that survived scavenges since the last growth add up to its
 * size: a long transfer, whose few objects per chunk die within microseconds but whose survivors accumulate
 * over thousands of scavenges, grows it to the maximum, and the grown pages stay resident. In `spicedav
 * serve` three 1 GiB GETs took it from 1 to 8 MiB of resident memory, carried into every request after; with
 * the cap the same GETs and PUTs ran at the same speed (bench:dav). Scavenges are more frequent, and each is as
 * cheap, since nearly nothing in it is alive.
 *
 * A V8 flag read at each growth decision, so setting it at run time is enough.
 * For the command-line program only: a library must not change its embedder's heap.
 */
export function capYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
