/**
 * Dead properties, persisted outside the shared folder.
 *
 * Why not xattrs (what phodav does): Node has no xattr API, so it would need a native addon; many file systems
 * a user may share (vfat, exFAT, some network mounts, tmpfs without user xattrs) have none, and phodav then
 * fails PROPPATCH with 404s. Why not sidecar files (what nephele does): they show up in the share, for the
 * guest and for the host user. So the store is one journal file per share under the state directory
 * (`$XDG_STATE_HOME/spicedav/` by default), never inside the share:
 *
 *   one JSON object per line:  {"p":"/a","set":[["{ns}name","<xml/>"]],"del":["{ns}name"]}
 *                              {"mv":["/a","/b"]}  {"cp":["/a","/b"]}  {"rm":"/a"}
 *
 * Every change is one appended line, so a PROPPATCH is all-or-nothing even across a crash (a torn last line is
 * ignored on replay). A line that could not be written whole (a full disk) is cut off again at once, so the next
 * line does not land after its torn half. Values are the property element serialised with its exact namespaces, any Unicode.
 * The journal is compacted into a snapshot when it grows to several times the live data.
 */
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isWithin, type DavPath } from '../paths.js';
import { DavError } from '../errors.js';
import type { Logger } from '../../src/log.js';

/** A stored dead property: its namespace, local name and the serialised element (with its value). */
export interface DeadProp {
  ns: string;
  name: string;
  xml: string;
}

/** The key of a property in the store: `{namespace}name`. */
export const propKey = (ns: string, name: string): string => `{${ns}}${name}`;

/** Split a `{ns}name` key back into namespace and local name. */
export function splitKey(key: string): { ns: string; name: string } {
  const i = key.indexOf('}');
  return { ns: key.slice(1, i), name: key.slice(i + 1) };
}

type Op = { p: string; set?: [string, string][]; del?: string[] } | { mv: [string, string] } | { cp: [string, string] } | { rm: string };

/** The dead-property store: in memory, backed by an append-only journal when a file is given. */
export class DeadPropStore {
  readonly #props = new Map<DavPath, Map<string, string>>();
  readonly #file: string | null;
  readonly #log: Logger;
  #fh: FileHandle | null = null;
  /** The journal's length after the last whole line: where a failed append is cut back to. */
  #size = 0;
  #lines = 0;
  #queue: Promise<void> = Promise.resolve();
  #generation = 0;

  private constructor(file: string | null, log: Logger) {
    this.#file = file;
    this.#log = log;
  }

  /**
   * Open (and replay) the store at `file`, or an in-memory store when `file` is null. `readOnly` (for a
   * read-only share, which never changes a property) only reads what is there: no directory is created and the
   * journal is not compacted, so the state directory need not be writable, nor exist.
   */
  static async open(file: string | null, log: Logger, { readOnly = false } = {}): Promise<DeadPropStore> {
    const store = new DeadPropStore(file, log);
    if (file) {
      if (!readOnly) await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      let text = '';
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        // No journal yet; ENOTDIR too, for a read-only store whose directory was never made (its path crosses a file).
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      }
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          store.#apply(JSON.parse(line) as Op);
          store.#lines++;
        } catch {
          log.warn({ file }, 'dead-property journal: skipping a torn or unreadable line');
        }
      }
      if (!readOnly) await store.#compactOrKeep();
    }
    return store;
  }

  /** Bumped by every change: lets renderers reuse what they built while it is unchanged. */
  get generation(): number {
    return this.#generation;
  }

  /** The dead properties of a resource (key → serialised element), if any. */
  get(path: DavPath): ReadonlyMap<string, string> | undefined {
    return this.#props.get(path);
  }

  /** Set and remove properties of one resource in one atomic step. */
  patch(path: DavPath, set: DeadProp[], del: string[]): Promise<void> {
    return this.#commit({ p: path, set: set.map((d) => [propKey(d.ns, d.name), d.xml]), del });
  }

  /** Copy the properties of `from` and everything below it to `to` (replacing what `to` had). */
  copyTree(from: DavPath, to: DavPath): Promise<void> {
    return this.#commit({ cp: [from, to] });
  }

  /** Move the properties of `from` and everything below it to `to`. */
  moveTree(from: DavPath, to: DavPath): Promise<void> {
    return this.#commit({ mv: [from, to] });
  }

  /** Forget the properties of `path` and everything below it. */
  removeTree(path: DavPath): Promise<void> {
    return this.#commit({ rm: path });
  }

  /** Flush and close the journal. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#fh?.close();
    this.#fh = null;
  }

  #commit(op: Op): Promise<void> {
    if (!this.#touches(op)) return Promise.resolve();
    const run = async () => {
      if (this.#file) await this.#append(JSON.stringify(op) + '\n');
      this.#apply(op);
      if (this.#lines > 1000 && this.#lines > 4 * this.#props.size) await this.#compactOrKeep();
    };
    const p = this.#queue.then(run);
    this.#queue = p.catch(() => {});
    return p.catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      // RFC 4918 §11.5: 507 when the server cannot store what the request needs, here the property.
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new DavError(507, 'DAV_ERR_PROPSTORE_FULL', `no space left for the property store ${this.#file}`, { cause: err });
      throw new DavError(500, 'DAV_ERR_PROPSTORE', `cannot write the property store ${this.#file}: ${(err as Error).message}`, { cause: err });
    });
  }

  /** False for tree operations that meet no stored property: they need no journal line. */
  #touches(op: Op): boolean {
    if ('p' in op) return true;
    const roots = 'rm' in op ? [op.rm] : 'mv' in op ? op.mv : op.cp;
    for (const p of this.#props.keys()) if (roots.some((r) => isWithin(p, r))) return true;
    return false;
  }

  #apply(op: Op): void {
    this.#generation++;
    if ('p' in op) {
      const m = new Map(this.#props.get(op.p));
      for (const k of op.del ?? []) m.delete(k);
      for (const [k, v] of op.set ?? []) m.set(k, v);
      if (m.size) this.#props.set(op.p, m);
      else this.#props.delete(op.p);
    } else if ('rm' in op) {
      for (const p of [...this.#props.keys()]) if (isWithin(p, op.rm)) this.#props.delete(p);
    } else {
      const [from, to] = 'mv' in op ? op.mv : op.cp;
      const moved: [string, Map<string, string>][] = [];
      for (const [p, m] of this.#props) if (isWithin(p, from)) moved.push([to + p.slice(from.length), new Map(m)]);
      for (const p of [...this.#props.keys()]) {
        if (isWithin(p, to) || ('mv' in op && isWithin(p, from))) this.#props.delete(p);
      }
      for (const [p, m] of moved) this.#props.set(p, m);
    }
  }

  /** Append one whole line, or nothing: a short or failed write is cut back off and reported. */
  async #append(line: string): Promise<void> {
    if (this.#fh === null) {
      this.#fh = await open(this.#file as string, 'a', 0o600);
      this.#size = (await this.#fh.stat()).size;
    }
    const bytes = Buffer.from(line);
    let written = 0;
    try {
      // A regular file takes a short write only when the disk fills up; the next one then fails with ENOSPC.
      while (written < bytes.length) written += (await this.#fh.write(bytes, written, bytes.length - written)).bytesWritten;
    } catch (err) {
      await this.#fh.truncate(this.#size).catch((e: unknown) => this.#log.warn({ file: this.#file, err: (e as Error).message }, 'dead-property journal: cannot cut a torn line off'));
      throw err;
    }
    this.#size += bytes.length;
    this.#lines++;
  }

  /**
   * Compaction only saves space: when it cannot be done (a full disk), the journal it would have replaced is
   * still whole, so this warns and goes on with it.
   */
  async #compactOrKeep(): Promise<void> {
    try {
      await this.#compact();
    } catch (err) {
      this.#log.warn({ file: this.#file, err: (err as Error).message }, 'dead-property journal: compaction failed; keeping the journal as it is');
      await rm(`${this.#file}.tmp`, { force: true }).catch(() => {});
    }
  }

  /** Rewrite the journal as one line per resource, atomically (temp file + rename). */
  async #compact(): Promise<void> {
    if (!this.#file) return;
    await this.#fh?.close();
    this.#fh = null;
    const tmp = `${this.#file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      let out = '';
      for (const [p, m] of this.#props) out += JSON.stringify({ p, set: [...m] }) + '\n';
      await fh.write(out);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.#file);
    this.#lines = this.#props.size;
    this.#log.debug({ file: this.#file, resources: this.#props.size }, 'dead-property journal compacted');
  }
}
