import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';

/**
 * One member of a newc cpio archive. `source` is a host file streamed into the archive (its size must not
 * change while writing), `data` an in-memory body; a directory has neither, a symlink has `target`, a
 * character device `rdev` ([major, minor]).
 */
export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; source: string; size: number }
  | { type: 'file'; path: string; mode?: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; mode?: number; rdev: [number, number] };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

// newc ("070701") header, every field 8 ASCII hex digits, as the kernel's init/initramfs.c reads it:
//   magic[6] ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
// then the NUL-terminated name padded to 4 bytes (counting the 110-byte header), then the body padded to 4.
function header(ino: number, mode: number, size: number, rdev: [number, number], nameSize: number): Buffer {
  const fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], nameSize, 0];
  return Buffer.from('070701' + fields.map((n) => n.toString(16).padStart(8, '0')).join(''), 'ascii');
}

const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

/**
 * Writes `entries` as one newc cpio archive (owner root, mtime 0) followed by the trailer, to `out`, honouring
 * backpressure; does not end `out`. Paths are relative to the archive root (no leading slash) and parents
 * must come before their children: the kernel does not create missing directories.
 */
export async function writeCpio(entries: Iterable<CpioEntry>, out: Writable): Promise<void> {
  let ino = 1;
  const put = async (buf: Buffer): Promise<void> => {
    if (!out.write(buf)) await once(out, 'drain');
  };
  const member = async (path: string, mode: number, size: number, rdev: [number, number] = [0, 0]): Promise<void> => {
    const name = Buffer.from(path + '\0', 'utf8');
    await put(Buffer.concat([header(ino++, mode, size, rdev, name.length), name, pad4(110 + name.length)]));
  };
  for (const e of entries) {
    switch (e.type) {
      case 'dir':
        await member(e.path, S_IFDIR | (e.mode ?? 0o755), 0);
        break;
      case 'symlink': {
        const body = Buffer.from(e.target, 'utf8');
        await member(e.path, S_IFLNK | 0o777, body.length);
        await put(Buffer.concat([body, pad4(body.length)]));
        break;
      }
      case 'chardev':
        await member(e.path, S_IFCHR | (e.mode ?? 0o600), 0, e.rdev);
        break;
      case 'file':
        if ('data' in e) {
          await member(e.path, S_IFREG | (e.mode ?? 0o644), e.data.length);
          await put(Buffer.concat([e.data, pad4(e.data.length)]));
        } else {
          await member(e.path, S_IFREG | (e.mode ?? 0o644), e.size);
          let copied = 0;
          for await (const chunk of createReadStream(e.source)) {
            copied += (chunk as Buffer).length;
            await put(chunk as Buffer);
          }
          if (copied !== e.size) throw new Error(`${e.source} changed size while archiving (${e.size} → ${copied})`);
          await put(pad4(e.size));
        }
        break;
    }
  }
  await member('TRAILER!!!', 0, 0);
}
