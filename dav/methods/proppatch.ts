/**
 * PROPPATCH (RFC 4918 §9.2): sets and removes applied in document order, all or nothing. Every instruction
 * is validated first; if one fails, nothing is changed and the others are reported 424 Failed Dependency.
 * Otherwise the real file's times (Win32 properties, ownCloud's DAV:lastmodified) are set, then the dead
 * properties are written in one journal line.
 */
import { DavError, badRequest, notFound } from '../errors.js';
import { DAV_NS, childElements, isElement, serializeElement, type XmlElement } from '../xml.js';
import { hrefOf } from '../paths.js';
import { MultiStatus, statusLine } from '../respond.js';
import { checkIfHeader, checkLocks } from '../preconditions.js';
import { LIVE, emptyProp } from '../props/live.js';
import { propKey, type DeadProp } from '../props/dead-store.js';
import { win32Effect } from '../props/win32.js';
import { lastModifiedEffect } from '../props/oc-lastmodified.js';
import type { MethodHandler } from './types.js';

interface Instruction {
  set: boolean;
  el: XmlElement;
  key: string;
}

/** Read the instructions of a `<D:propertyupdate>` in document order. */
function parseUpdate(body: XmlElement | null): Instruction[] {
  if (!body || !isElement(body, DAV_NS, 'propertyupdate')) throw badRequest('DAV_ERR_BAD_PROPPATCH', 'the body of a PROPPATCH must be a DAV:propertyupdate element');
  const out: Instruction[] = [];
  for (const op of childElements(body)) {
    const set = isElement(op, DAV_NS, 'set');
    if (!set && !isElement(op, DAV_NS, 'remove')) continue;
    for (const prop of childElements(op).filter((c) => isElement(c, DAV_NS, 'prop'))) {
      for (const el of childElements(prop)) out.push({ set, el, key: propKey(el.ns, el.name) });
    }
  }
  if (out.length === 0) throw badRequest('DAV_ERR_BAD_PROPPATCH', 'PROPPATCH names no property');
  return out;
}

export const proppatch: MethodHandler = {
  write: true,
  async handle(ctx) {
    const instructions = parseUpdate(await ctx.readXml());
    const entry = await ctx.entry();
    if (!entry) throw notFound(ctx.path);
    await checkIfHeader(ctx);
    checkLocks(ctx, ctx.path);

    const failed = new Map<string, DavError>();
    const times: { atimeMs?: number; mtimeMs?: number } = {};
    const final = new Map<string, DeadProp | null>(); // key → value to set, or null to remove
    for (const ins of instructions) {
      try {
        const effect = ins.set ? (win32Effect(ins.el) ?? lastModifiedEffect(ins.el)) : null;
        if (effect?.kind === 'times') {
          if (effect.atimeMs !== undefined) times.atimeMs = effect.atimeMs;
          if (effect.mtimeMs !== undefined) times.mtimeMs = effect.mtimeMs;
          final.delete(ins.key);
          continue;
        }
        if (LIVE.get(ins.key)?.protected) {
          throw new DavError(403, 'DAV_ERR_PROTECTED_PROPERTY', `${ins.el.name} is computed by the server and cannot be changed`, {
            condition: { name: 'cannot-modify-protected-property' },
          });
        }
        final.set(ins.key, ins.set ? { ns: ins.el.ns, name: ins.el.name, xml: serializeElement(ins.el) } : null);
      } catch (err) {
        if (!(err instanceof DavError)) throw err;
        failed.set(ins.key, err);
      }
    }
    if (failed.size === 0) {
      if (times.atimeMs !== undefined || times.mtimeMs !== undefined) await ctx.dav.storage.setTimes(ctx.path, times);
      const set = [...final.values()].filter((v): v is DeadProp => v !== null);
      const del = [...final].filter(([, v]) => v === null).map(([k]) => k);
      await ctx.dav.props.patch(ctx.path, set, del);
    }

    const groups = new Map<number, string>();
    const seen = new Set<string>();
    for (const ins of instructions) {
      if (seen.has(ins.key)) continue;
      seen.add(ins.key);
      const status = failed.get(ins.key)?.status ?? (failed.size ? 424 : 200);
      groups.set(status, (groups.get(status) ?? '') + emptyProp(ins.el));
    }
    let xml = `<D:response><D:href>${hrefOf(ctx.path, entry.collection)}</D:href>`;
    for (const [status, props] of groups) xml += `<D:propstat><D:prop>${props}</D:prop><D:status>${statusLine(status)}</D:status></D:propstat>`;
    const ms = new MultiStatus(ctx.res);
    await ms.add(xml + '</D:response>');
    await ms.end();
  },
};
