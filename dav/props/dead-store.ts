/**
 * Dead properties, persisted outside the shared folder.
 *
 * Why not xattrs (what phodav does): Node has no xattr API, so it would need a native addon; many file systems
 * a user may share (vfat, exFAT, some network mounts, tmpfs without user xattrs) have none, and phodav then
 * fails PROPPATCH with 404s. Why not sidecar files (what nephele does): they show up in the share, for the
 * guest and for the host user. So the store is one journal file per share under the state directory
 * (`$XDG_STATE_HOME/spicedav/` by default), never inside the share, shared by every process serving the folder
 * (`journal/shared-journal.ts`):
 *
 *   one JSON object per line:  {"p":"/a","set":[["{ns}name","<xml/>"]],"del":["{ns}name"]}
 *                              {"mv":["/a","/b"]}  {"cp":["/a","/b"]}  {"rm":"/a"}
 *
 * Every change is one line, so a PROPPATCH is all-or-nothing even across a crash. Values are the property element
 * serialised with its exact namespaces, any Unicode. A compacted journal holds one `p` line per resource.
 */
import { isWithin, type DavPath } from '../paths.js';
import { SharedJournal, type JournalState, type SharedJournalOptions } from '../journal/shared-journal.js';
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

/** How `DeadPropStore.open` opens its journal. */
export type DeadPropStoreOptions = SharedJournalOptions;

/** The properties as the journal says they are, and how each change applies to them. */
class PropTable implements JournalState<Op> {
  readonly props = new Map<DavPath, Map<string, string>>();
  /** Bumped by every change: lets renderers reuse what they built while it is unchanged. */
  generation = 0;

  get size(): number {
    return this.props.size;
  }

  snapshot(): Op[] {
    return [...this.props].map(([p, m]) => ({ p, set: [...m] }));
  }

  clear(): void {
    if (this.props.size) this.generation++;
    this.props.clear();
  }

  /**
   * Journals written before CRs were escaped (xml.ts escapeText) hold them raw in values, where a client's parser
   * would read LF: a raw CR can only have come from a `&#13;` the client sent, so it is written back as one.
   */
  apply(op: Op): void {
    this.generation++;
    const props = this.props;
    if ('p' in op) {
      const m = new Map(props.get(op.p));
      for (const k of op.del ?? []) m.delete(k);
      for (const [k, v] of op.set ?? []) m.set(k, v.includes('\r') ? v.replaceAll('\r', '&#13;') : v);
      if (m.size) props.set(op.p, m);
      else props.delete(op.p);
    } else if ('rm' in op) {
      for (const p of [...props.keys()]) if (isWithin(p, op.rm)) props.delete(p);
    } else {
      const [from, to] = 'mv' in op ? op.mv : op.cp;
      const moved: [string, Map<string, string>][] = [];
      for (const [p, m] of props) if (isWithin(p, from)) moved.push([to + p.slice(from.length), new Map(m)]);
      for (const p of [...props.keys()]) {
        if (isWithin(p, to) || ('mv' in op && isWithin(p, from))) props.delete(p);
      }
      for (const [p, m] of moved) props.set(p, m);
    }
  }
}

/** The dead-property store: in memory, replayed from a journal shared with other processes when a file is given. */
export class DeadPropStore {
  readonly #table: PropTable;
  readonly #journal: SharedJournal<Op>;

  private constructor(table: PropTable, journal: SharedJournal<Op>) {
    this.#table = table;
    this.#journal = journal;
  }

  /**
   * Open (and replay) the store at `file`, or an in-memory store when `file` is null. A read-only store (for a
   * read-only share, which never changes a property) needs neither a writable state directory nor an existing one.
   */
  static async open(file: string | null, log: Logger, options: DeadPropStoreOptions = {}): Promise<DeadPropStore> {
    const table = new PropTable();
    return new DeadPropStore(table, await SharedJournal.open(file, table, { what: 'property store', code: 'DAV_ERR_PROPSTORE' }, log, options));
  }

  /** Bumped by every change: lets renderers reuse what they built while it is unchanged. */
  get generation(): number {
    return this.#table.generation;
  }

  /** The dead properties of a resource (key → serialised element), if any, as of the last `sync` or change. */
  get(path: DavPath): ReadonlyMap<string, string> | undefined {
    return this.#table.props.get(path);
  }

  /** Apply what other processes serving this folder changed since the last look, before answering from `get`. */
  sync(): Promise<void> {
    return this.#journal.sync();
  }

  /** Set and remove properties of one resource in one atomic step. */
  patch(path: DavPath, set: DeadProp[], del: string[]): Promise<void> {
    // Nothing to store (a PROPPATCH of Win32 times only, applied to the file): no line, no lock.
    if (set.length === 0 && del.length === 0) return Promise.resolve();
    return this.#journal.commit(() => ({ p: path, set: set.map((d) => [propKey(d.ns, d.name), d.xml]), del }));
  }

  /** Give `to` the properties `from` has (not those of its members: a COPY with Depth 0). */
  copyOwn(from: DavPath, to: DavPath): Promise<void> {
    return this.#journal.commit(() => {
      const own = this.#table.props.get(from);
      return own ? { p: to, set: [...own] } : null;
    });
  }

  /** Copy the properties of `from` and everything below it to `to` (replacing what `to` had). */
  copyTree(from: DavPath, to: DavPath): Promise<void> {
    return this.#journal.commit(() => this.#treeOp({ cp: [from, to] }));
  }

  /** Move the properties of `from` and everything below it to `to`. */
  moveTree(from: DavPath, to: DavPath): Promise<void> {
    return this.#journal.commit(() => this.#treeOp({ mv: [from, to] }));
  }

  /** Forget the properties of `path` and everything below it. */
  removeTree(path: DavPath): Promise<void> {
    return this.#journal.commit(() => this.#treeOp({ rm: path }));
  }

  /** Finish pending changes and close the journal. */
  close(): Promise<void> {
    return this.#journal.close();
  }

  /** A tree operation, or null when it meets no stored property: it needs no journal line. */
  #treeOp(op: Exclude<Op, { p: string }>): Op | null {
    const roots = 'rm' in op ? [op.rm] : 'mv' in op ? op.mv : op.cp;
    for (const p of this.#table.props.keys()) if (roots.some((r) => isWithin(p, r))) return op;
    return null;
  }
}
