/**
 * XML in and out. Requests are parsed with saxes: strict, namespace-aware, and it never expands entities — a
 * DOCTYPE is refused outright (400), so no entity can even be declared. The result is a small tree that keeps
 * exact namespaces, which is what dead properties need to round-trip. Output is built as strings with every
 * text and attribute escaped and characters XML 1.0 cannot carry replaced, so a hostile file name can never
 * break a multistatus.
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { DavError, badRequest } from './errors.js';

/** The DAV: namespace URI. */
export const DAV_NS = 'DAV:';

/** An attribute of a parsed element, with its namespace URI ('' for none). */
export interface XmlAttr {
  ns: string;
  name: string;
  value: string;
}

/** A parsed element: namespace URI ('' for none), local name, attributes (xmlns declarations removed), children. */
export interface XmlElement {
  ns: string;
  name: string;
  attrs: XmlAttr[];
  children: XmlNode[];
}

/** A child of an element: an element or a run of character data. */
export type XmlNode = XmlElement | string;

const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

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

/** The child elements of an element (text and whitespace skipped). */
export function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== 'string');
}

/** True when an element has the given namespace and local name. */
export function isElement(el: XmlElement, ns: string, name: string): boolean {
  return el.ns === ns && el.name === name;
}

/** Concatenated character data of an element's direct children. */
export function textOf(el: XmlElement): string {
  return el.children.filter((c): c is string => typeof c === 'string').join('');
}

// Characters XML 1.0 cannot represent (C0 controls except tab/LF/CR, U+FFFE/U+FFFF, lone surrogates).
// File names on Linux may contain them; they are replaced by U+FFFD rather than producing a broken document.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const INVALID_XML = /[\0-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escape character data for an XML text node. */
export function escapeText(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;')).replace(INVALID_XML, '\uFFFD');
}

/** Escape a value for a double-quoted XML attribute. */
export function escapeAttr(s: string): string {
  return s
    .replace(/[&<>"\r\n\t]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\r': '&#13;', '\n': '&#10;', '\t': '&#9;' })[c] ?? c)
    .replace(INVALID_XML, '\uFFFD');
}

/**
 * Serialise an element with its exact namespaces and no reliance on the enclosing document's declarations:
 * every namespace the element or its descendants use is declared with a generated prefix where first needed.
 * Elements in no namespace stay unprefixed; the documents we write never declare a default namespace, so that
 * is exact. `inScope` maps namespace URI → prefix already declared by an ancestor written by this function.
 */
export function serializeElement(el: XmlElement, inScope: ReadonlyMap<string, string> = new Map(), counter = { n: 0 }): string {
  const scope = new Map(inScope);
  let decls = '';
  const prefixFor = (ns: string): string => {
    if (ns === XML_NS) return 'xml';
    let p = scope.get(ns);
    if (p === undefined) {
      p = `ns${counter.n++}`;
      scope.set(ns, p);
      decls += ` xmlns:${p}="${escapeAttr(ns)}"`;
    }
    return p;
  };
  const qname = el.ns === '' ? el.name : `${prefixFor(el.ns)}:${el.name}`;
  let attrs = '';
  for (const a of el.attrs) attrs += ` ${a.ns === '' ? a.name : `${prefixFor(a.ns)}:${a.name}`}="${escapeAttr(a.value)}"`;
  if (el.children.length === 0) return `<${qname}${decls}${attrs}/>`;
  let inner = '';
  for (const c of el.children) inner += typeof c === 'string' ? escapeText(c) : serializeElement(c, scope, counter);
  return `<${qname}${decls}${attrs}>${inner}</${qname}>`;
}
