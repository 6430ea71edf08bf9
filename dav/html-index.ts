/**
 * The HTML page answering GET on a collection, so a browser pointed at the share can browse and download.
 * Names are escaped and links percent-encoded; nothing here can inject markup.
 */
import { hrefOf, nameOf, parentOf, type DavPath } from './paths.js';
import { escapeAttr, escapeText } from './xml.js';
import type { Entry } from './storage/backend.js';

/** Render the index of `path` with its members (sorted: collections first, then by name). */
export function htmlIndex(path: DavPath, members: Entry[]): string {
  const sorted = [...members].sort((a, b) => Number(b.collection) - Number(a.collection) || (nameOf(a.path) < nameOf(b.path) ? -1 : 1));
  const rows = sorted.map((e) => {
    const name = nameOf(e.path) + (e.collection ? '/' : '');
    const size = e.collection ? '' : String(e.size);
    return `<tr><td><a href="${escapeAttr(hrefOf(e.path, e.collection))}">${escapeText(name)}</a></td><td>${size}</td><td>${new Date(e.mtimeMs).toUTCString()}</td></tr>`;
  });
  const up = path === '/' ? '' : `<tr><td><a href="${escapeAttr(hrefOf(parentOf(path), true))}">../</a></td><td></td><td></td></tr>`;
  return (
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of ${escapeText(path)}</title></head><body>` +
    `<h1>Index of ${escapeText(path)}</h1><table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>${up}${rows.join('')}</table></body></html>\n`
  );
}
