/**
 * The XML tree of request bodies (parsed in xml-parse.ts) and XML output. Output is built as strings with
 * every text and attribute escaped and characters XML 1.0 cannot carry replaced, so a hostile file name can
 * never break a multistatus. Parsing lives apart so that its dependency (saxes, whose Unicode tables cost about
 * 10 MB of memory) is loaded only when the first XML body arrives.
 */

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

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

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

// Anything escapeText would change (the common name or value has none of these, and skips both replaces).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_ESCAPE = /[&<>\r\0-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]/;

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };

/**
 * Escape character data for an XML text node. A CR is written as a reference: a raw one would reach the client
 * as LF (XML parsers normalise line ends), and a dead property stored with CRLF would come back changed.
 */
export function escapeText(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[&<>\r]/g, (c) => TEXT_ESCAPES[c] ?? c).replace(INVALID_XML, '\uFFFD');
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
