/**
 * Parsing request bodies with saxes: strict, namespace-aware, and it never expands entities — a DOCTYPE is
 * refused outright (400), so no entity can even be declared. The result is a small tree (xml.ts) that keeps
 * exact namespaces, which is what dead properties need to round-trip.
 */
import type { SaxesTagNS } from 'saxes';
import { requireCjs } from '../src/require-cjs.js';
import { DavError, badRequest } from './errors.js';
import type { XmlAttr, XmlElement } from './xml.js';

const { SaxesParser } = requireCjs('saxes') as typeof import('saxes');

const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** Limits applied while parsing a request body. */
export interface XmlLimits {
  /** Deepest element nesting accepted (bounds recursion when the tree is walked or serialised). */
  maxDepth: number;
}

/** Parse a request body into its root element. Throws DavError 400 on malformed XML, a DOCTYPE or too deep a tree. */
export function parseXml(text: string, limits: XmlLimits): XmlElement {
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  // Handlers throw to stop saxes at once: it would otherwise go on through the rest of the input, and its cost
  // grows with the square of the nesting depth.
  parser.on('error', (err) => {
    throw badRequest('DAV_ERR_BAD_XML', `malformed XML body: ${err.message}`, err);
  });
  parser.on('doctype', () => {
    throw badRequest('DAV_ERR_XML_DOCTYPE', 'XML bodies with a DOCTYPE are refused (no entities are ever expanded)');
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (stack.length >= limits.maxDepth) throw badRequest('DAV_ERR_XML_TOO_DEEP', `XML body nests deeper than ${limits.maxDepth} elements`);
    const attrs: XmlAttr[] = [];
    for (const a of Object.values(tag.attributes)) {
      if (a.uri === XMLNS_NS) continue;
      attrs.push({ ns: a.uri, name: a.local, value: a.value });
    }
    const el: XmlElement = { ns: tag.uri ?? '', name: tag.local, attrs, children: [] };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root = el;
    stack.push(el);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const onText = (t: string) => {
    const parent = stack[stack.length - 1];
    if (!parent) return;
    const last = parent.children[parent.children.length - 1];
    if (typeof last === 'string') parent.children[parent.children.length - 1] = last + t;
    else parent.children.push(t);
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  try {
    parser.write(text);
    parser.close();
  } catch (err) {
    if (err instanceof DavError) throw err;
    throw badRequest('DAV_ERR_BAD_XML', `malformed XML body: ${(err as Error).message}`, err);
  }
  if (!root) throw badRequest('DAV_ERR_BAD_XML', 'the XML body has no root element');
  return root;
}
