/**
 * Finding a libvirt domain's SPICE server: `spicedav share DIR --domain NAME`. virt-manager and virsh pick the
 * SPICE port themselves (autoport), so users do not know it, and it changes each time the domain starts. libvirt
 * tells it through `virsh domdisplay --type spice NAME` (what it prints: domdisplay.ts).
 *
 * The transport asks again before every connection attempt, so a domain that is restarted on a new port, or
 * started after `share`, is found. Running virsh (rather than speaking libvirt's RPC protocol) keeps its
 * connection URIs, authentication and polkit rules exactly as the user has them.
 */
import { execFile } from 'node:child_process';
import { HostError } from './errors.js';
import { noSpiceDisplay, parseDomDisplay, remoteHostOf, type DomainSpiceAddress } from './domdisplay.js';

/** Where virt-manager keeps its VMs; tried when the default connection does not know the domain. */
export const LIBVIRT_SYSTEM_URI = 'qemu:///system';

/** What virsh printed and how it exited. */
export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs virsh with these arguments; rejects with ENOENT when it is not installed. An aborted `signal` kills it and
 * rejects with an AbortError.
 */
export type VirshRunner = (args: string[], signal?: AbortSignal) => Promise<VirshResult>;

/** Options of {@link DomainLocator}. */
export interface DomainLocatorOptions {
  /** Domain name, id or UUID, as virsh takes it. */
  domain: string;
  /** libvirt connection URI (virsh -c); default virsh's own default, then qemu:///system. */
  connect?: string;
  /**
   * Also fetch the domain's SPICE password (`--include-password`; needs a read-write connection, so a read-only
   * one gives the address alone). Default true; false when the password comes from elsewhere.
   */
  password?: boolean;
  /** How virsh is run (tests); default the `virsh` on PATH with LC_ALL=C. */
  run?: VirshRunner;
}

// "failed to get domain 'NAME'", not "Failed to get domain description xml" (a refused --include-password).
const NOT_FOUND = /failed to get domain '|domain not found|no domain with matching/i;
const NOT_RUNNING = /not running|domain is not active/i;
const NO_DISPLAY = /no graphical display/i;
/** What virshRunner adds to stderr when virsh did not answer in time. */
const TIMED_OUT = /virsh did not answer within/;
/** Answers about the domain itself, or no answer at all, which no other set of options would change. */
const KNOWN_FAILURE = [NOT_FOUND, NOT_RUNNING, NO_DISPLAY, TIMED_OUT];
const UNKNOWN_OPTION = /doesn't support option|unknown option|unexpected data/i;

/** How long one virsh call may take by default. */
const VIRSH_TIMEOUT_MS = 30_000;

/**
 * Runs virsh (`program`, default the one on PATH) in the C locale, so that its error messages can be recognised,
 * for at most `timeoutMs`.
 */
export function virshRunner(options: { program?: string; timeoutMs?: number } = {}): VirshRunner {
  const timeoutMs = options.timeoutMs ?? VIRSH_TIMEOUT_MS;
  return (args, signal) =>
    new Promise((resolve, reject) => {
      execFile(options.program ?? 'virsh', args, { env: { ...process.env, LC_ALL: 'C' }, timeout: timeoutMs, maxBuffer: 1024 * 1024, signal }, (err, stdout, stderr) => {
        const code = (err as NodeJS.ErrnoException | null)?.code;
        if (code === 'ENOENT' || code === 'ABORT_ERR') return reject(err as Error);
        // Killed by the timeout (libvirtd hung, or a remote connection that does not answer): say so.
        const timedOut = (err as { killed?: boolean } | null)?.killed === true;
        // Not started at all (EACCES, ...): its reason is the message, as virsh would have said it.
        const failed = typeof code === 'string' ? `error: cannot run virsh: ${(err as Error).message}` : '';
        resolve({
          code: err === null ? 0 : typeof code === 'number' ? code : 1,
          stdout,
          stderr: timedOut ? `${stderr}\nerror: virsh did not answer within ${timeoutMs / 1000} s` : failed || stderr,
        });
      });
    });
}

/** The `virsh` on PATH. */
export const runVirsh: VirshRunner = virshRunner();

/** virsh's `-c URI` for a connection (nothing for its default one). */
const connectArgs = (connect: string | undefined): string[] => (connect ? ['-c', connect] : []);

/** virsh's complaint on one line: its lines joined, without their "error: " prefixes. */
function virshMessage(r: VirshResult): string {
  const lines = r.stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/i, '').trim())
    .filter(Boolean);
  return lines.join('; ') || `virsh exited with status ${r.code}`;
}

/**
 * Asks libvirt where a domain's SPICE server is, each time `locate()` is called. Errors (HostError):
 * HOST_ERR_NO_VIRSH, HOST_ERR_DOMAIN_NOT_FOUND, HOST_ERR_NO_SPICE_DISPLAY (the user must act), and
 * HOST_ERR_DOMAIN_NOT_RUNNING, HOST_ERR_LIBVIRT (may pass: the domain starts, libvirtd comes back).
 */
export class DomainLocator {
  readonly domain: string;
  readonly #run: VirshRunner;
  /**
   * The connection that knew the domain, so later calls go straight to it: the one given, or once found,
   * qemu:///system. Undefined: virsh's default, with qemu:///system to try when it does not know the domain.
   */
  #connect: string | undefined;
  /** Whether this virsh knows `domdisplay --type` (older ones print the first display of any type). */
  #typeOption = true;
  /** Whether to ask for the password: until a connection shows it may not be seen (read-only access). */
  #passwordOption: boolean;

  constructor(options: DomainLocatorOptions) {
    this.domain = options.domain;
    this.#run = options.run ?? runVirsh;
    this.#connect = options.connect;
    this.#passwordOption = options.password ?? true;
  }

  /** The libvirt connection in use (undefined: virsh's default). */
  get connect(): string | undefined {
    return this.#connect;
  }

  /** Where the domain's SPICE server is now, and its password when asked for and visible. `signal` stops virsh. */
  async locate(signal?: AbortSignal): Promise<DomainSpiceAddress> {
    let r = await this.#domdisplay(this.#connect, signal);
    if (r.code !== 0 && NOT_FOUND.test(r.stderr) && this.#connect === undefined) {
      // virsh's default for a user is qemu:///session; virt-manager's VMs are in qemu:///system. An answer about
      // the domain there (its display, not running, no SPICE display) means it lives there; a connection that
      // fails says nothing about it, and the domain stays "not found".
      const system = await this.#domdisplay(LIBVIRT_SYSTEM_URI, signal);
      if (system.code === 0 || NOT_RUNNING.test(system.stderr) || NO_DISPLAY.test(system.stderr)) {
        this.#connect = LIBVIRT_SYSTEM_URI;
        r = system;
      }
    }
    if (r.code === 0) return parseDomDisplay(r.stdout, this.domain, remoteHostOf(this.#connect));
    const why = virshMessage(r);
    const where = this.#connect ?? `virsh's default connection or ${LIBVIRT_SYSTEM_URI}`;
    if (NOT_FOUND.test(r.stderr)) {
      throw new HostError('HOST_ERR_DOMAIN_NOT_FOUND', `libvirt has no domain "${this.domain}" on ${where} (${why}); \`virsh list --all\` shows the names; --connect URI picks the connection`);
    }
    if (NO_DISPLAY.test(r.stderr)) throw noSpiceDisplay(this.domain);
    if (NOT_RUNNING.test(r.stderr)) {
      throw new HostError('HOST_ERR_DOMAIN_NOT_RUNNING', `the domain "${this.domain}" is not running (start it: virsh start ${this.domain})`);
    }
    throw new HostError('HOST_ERR_LIBVIRT', `virsh domdisplay ${this.domain} failed: ${why}`);
  }

  async #domdisplay(connect: string | undefined, signal: AbortSignal | undefined): Promise<VirshResult> {
    const args = () => [
      ...connectArgs(connect),
      'domdisplay',
      ...(this.#typeOption ? ['--type', 'spice'] : []),
      ...(this.#passwordOption ? ['--include-password'] : []),
      '--domain',
      this.domain,
    ];
    let r = await this.#exec(args(), signal);
    if (r.code !== 0 && this.#typeOption && UNKNOWN_OPTION.test(r.stderr)) {
      this.#typeOption = false;
      r = await this.#exec(args(), signal);
    }
    if (r.code !== 0 && this.#passwordOption && !KNOWN_FAILURE.some((re) => re.test(r.stderr))) {
      // Refused with the password (a read-only connection may not see it): the address alone, if that works,
      // is all we can have; libvirtd being down fails both ways and leaves the option for next time.
      this.#passwordOption = false;
      const plain = await this.#exec(args(), signal);
      if (plain.code === 0) return plain;
      this.#passwordOption = true;
    }
    return r;
  }

  async #exec(args: string[], signal: AbortSignal | undefined): Promise<VirshResult> {
    try {
      return await this.#run(args, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new HostError(
          'HOST_ERR_NO_VIRSH',
          '--domain asks libvirt through virsh, which is not installed (Debian/Ubuntu: apt install libvirt-clients; Fedora: dnf install libvirt-client); or give the address with --spice spice://HOST:PORT',
          { cause: err },
        );
      }
      throw err;
    }
  }
}

/**
 * The running libvirt domains on virsh's default connection and on qemu:///system, for hints ("which VM did you
 * mean?"): never throws, an unreachable connection just lists nothing.
 */
export async function runningDomains(run: VirshRunner = virshRunner({ timeoutMs: 5000 })): Promise<string[]> {
  const names = new Set<string>();
  for (const connect of [undefined, LIBVIRT_SYSTEM_URI]) {
    try {
      const r = await run([...connectArgs(connect), 'list', '--name']);
      if (r.code !== 0) continue;
      for (const line of r.stdout.split('\n')) if (line.trim()) names.add(line.trim());
    } catch {
      // No virsh: no hint.
    }
  }
  return [...names];
}
