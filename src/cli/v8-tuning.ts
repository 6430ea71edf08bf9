import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings for the `spicedav` process, a long-running server, for the V8 version given (this process's by
 * default). They are V8 flags read each time V8 makes the decision they govern, so setting them at run time,
 * first thing in main(), is enough. For the command-line
 * program only: a library must not change its embedder's heap or compiler.
 *
 * - The young generation stays at its starting size (1 MiB a semi-space). V8 grows it, up to 16 MiB a
 *   semi-space, once the bytes that survived scavenges since the last growth add up to its size: a long
 *   transfer, whose few objects per chunk die within microseconds but whose survivors accumulate over thousands
 *   of scavenges, grows it to the maximum, and the grown pages stay resident. In `spicedav serve` three 1 GiB
 *   GETs took it from 1 to 8 MiB of resident memory, carried into every request after; with the cap the same
 *   GETs and PUTs ran at the same speed (bench:dav). Scavenges are more frequent, and each is as cheap, since
 *   nearly nothing in it is alive.
 * - On V8 11 (Node 20), hot code reaches the optimizing compiler after a sixteenth of V8's default work
 *   (interrupt budget 4,096 instead of 67,584 bytecode bytes). A request runs through a few hundred functions,
 *   ours and Node's HTTP stack, each run a few times per request; with the default budget the first ~1,000 small
 *   requests of a fresh server ran interpreted at half speed, which is a whole directory listing's worth of
 *   small GETs a user waits on. Measured in slices of 250 sequential 4 KiB GETs on a fresh `spicedav serve`: the
 *   second and third slices ran at 1,500–2,500 per second with V8's default, 2,300–3,700 with this budget; the
 *   steady state and the resident memory did not change.
 *   V8 12 and later (Node 22 on) count calls instead (TurboFan after 3,000, Maglev after 400 where it is on)
 *   and have no `--interrupt-budget`: setting it there makes V8 print "unrecognized flag" at every start. Their
 *   default already tiers up early; a sixteenth of it (`--invocation-count-for-turbofan=188`) made the first
 *   slices slower on Node 22 and 24 (more compiles while the profile is still thin), so they keep it.
 */
export function v8Flags(v8Version: string = process.versions.v8): string[] {
  const major = Number.parseInt(v8Version, 10);
  return major < 12 ? ['--semi-space-growth-factor=1', '--interrupt-budget=4096'] : ['--semi-space-growth-factor=1'];
}

/** Sets v8Flags() in this process. */
export function tuneV8(): void {
  for (const flag of v8Flags()) setFlagsFromString(flag);
}
