import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { serializeElement, escapeText, escapeAttr, childElements, textOf, type XmlElement, type XmlNode } from '../../../dav/xml.js';
import { parseXml } from '../../../dav/xml-parse.js';
import { DavError } from '../../../dav/errors.js';

const limits = { maxDepth: 16 };
const code = (xml: string): string => {
  try {
    parseXml(xml, limits);
  } catch (err) {
    assert.ok(err instanceof DavError);
    assert.equal(err.status, 400);
    return err.code;
  }
  return 'ok';
};

test('parses namespaces exactly: prefixes, default namespace, empty namespace, attributes', () => {
  const root = parseXml('<?xml version="1.0"?><D:a xmlns:D="DAV:" xmlns="urn:x"><b q="1" D:r="2"/><c xmlns="">t</c></D:a>', limits);
  assert.equal(root.ns, 'DAV:');
  assert.equal(root.name, 'a');
  const [b, c] = childElements(root);
  assert.deepEqual([b?.ns, b?.name], ['urn:x', 'b']);
  assert.deepEqual(b?.attrs, [{ ns: '', name: 'q', value: '1' }, { ns: 'DAV:', name: 'r', value: '2' }]);
  assert.deepEqual([c?.ns, c?.name, c && textOf(c)], ['', 'c', 't']);
});

test('character references, CDATA and the five predefined entities are text; U+10000 survives', () => {
  const root = parseXml('<a>&lt;&amp;&gt;&quot;&apos;&#65536;&#x10000;<![CDATA[<x>]]></a>', limits);
  assert.equal(textOf(root), '<&>"\'\u{10000}\u{10000}<x>');
});

test('malformed XML is a 400', () => {
  for (const bad of ['<a>', '<a></b>', '<a><b></a>', '', '   ', 'text', '<a/><b/>', '<x:a/>', '<a xmlns:b=""><b:c/></a>', '<a b="1" b="2"/>', '<a>\u0001</a>']) {
    assert.equal(code(bad), 'DAV_ERR_BAD_XML', JSON.stringify(bad));
  }
});

test('a DOCTYPE is refused and no entity is ever expanded', () => {
  assert.equal(code('<!DOCTYPE a><a/>'), 'DAV_ERR_XML_DOCTYPE');
  assert.equal(code('<!DOCTYPE a [<!ENTITY x "boom">]><a>&x;</a>'), 'DAV_ERR_XML_DOCTYPE');
  assert.equal(code('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'), 'DAV_ERR_XML_DOCTYPE');
  const lol = '<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>';
  assert.equal(code(lol), 'DAV_ERR_XML_DOCTYPE');
  assert.equal(code('<a>&undefined;</a>'), 'DAV_ERR_BAD_XML');
});

test('nesting deeper than the limit is refused', () => {
  const deep = (n: number) => '<a>'.repeat(n) + '</a>'.repeat(n);
  assert.equal(code(deep(16)), 'ok');
  assert.equal(code(deep(17)), 'DAV_ERR_XML_TOO_DEEP');
  assert.equal(code(deep(10_000)), 'DAV_ERR_XML_TOO_DEEP');
});

test('a hostile deep body is refused at the limit, not after parsing all of it', () => {
  const n = 300_000; // ~2 MB: saxes' cost grows with depth squared, so reading on would take minutes
  const t0 = performance.now();
  assert.equal(code('<a>'.repeat(n) + '</a>'.repeat(n)), 'DAV_ERR_XML_TOO_DEEP');
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
});

test('serialisation round-trips namespaces and values and declares what it uses', () => {
  const src = '<p:prop xmlns:p="http://example.com/neon/litmus/" xmlns:q="urn:q" q:at="a&amp;&quot;"><q:x>1 &lt; 2</q:x><y xmlns="">\u{10000}</y><z xmlns="urn:q"/></p:prop>';
  const el = parseXml(src, limits);
  const out = serializeElement(el);
  assert.ok(!out.includes('xmlns=""'), out);
  assert.deepEqual(parseXml(`<w xmlns:D="DAV:">${out}</w>`, limits).children[0], el);
});

test('escaping replaces characters XML 1.0 cannot carry', () => {
  assert.equal(escapeText('a<b>&c'), 'a&lt;b&gt;&amp;c');
  assert.equal(escapeText('x\u0001y\uFFFEz\uD800'), 'x\uFFFDy\uFFFDz\uFFFD');
  assert.equal(escapeText('\u{10000}'), '\u{10000}');
  assert.equal(escapeText('a\r\nb'), 'a&#13;\nb', 'a raw CR would be read back as LF');
  assert.equal(escapeAttr('"a"\n'), '&quot;a&quot;&#10;');
});

/** Text XML 1.0 can carry, rich in what must be escaped: markup, CR (an XML parser turns a raw CR into LF), tabs. */
const xmlText = fc.string({
  unit: fc.oneof(fc.constantFrom('<', '>', '&', '"', "'", '\r', '\n', '\t', ' ', ']]>', '\u{10000}', 'é', 'a'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  minLength: 1,
  maxLength: 8,
  // eslint-disable-next-line no-control-regex -- the characters XML 1.0 cannot carry (escapeText replaces them)
}).map((s) => s.replace(/[\0-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|\p{Cs}/gu, 'x'));
const ncName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9._-]{0,6}$/);
const namespace = fc.constantFrom('', 'DAV:', 'urn:x', 'http://example.com/a"b&c<d', 'http://www.w3.org/XML/1998/namespace');
const attr = fc.record({ ns: namespace, name: ncName, value: fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => s + '\r\n\t<&"') });

/** Elements as the parser gives them: no empty text, no two texts side by side, attribute names unique. */
const element: fc.Arbitrary<XmlElement> = fc.letrec<{ el: XmlElement }>((tie) => ({
  el: fc
    .record({
      ns: fc.constantFrom('', 'DAV:', 'urn:x', 'http://example.com/a"b&c<d'),
      name: ncName,
      attrs: fc.uniqueArray(attr, { maxLength: 3, selector: (a) => `${a.ns} ${a.name}` }),
      children: fc.array(fc.oneof({ depthSize: 'small' }, xmlText, tie('el')), { maxLength: 4 }),
    })
    .map((e) => ({
      ...e,
      attrs: e.attrs.map((a) => ({ ...a })),
      children: e.children.reduce<XmlNode[]>((out, c) => {
        const last = out[out.length - 1];
        if (typeof c === 'string' && typeof last === 'string') out[out.length - 1] = last + c;
        else out.push(c);
        return out;
      }, []),
    })),
})).el;

test('property: any element, serialised and parsed again, is the same element: namespaces, attributes, CR, markup', () => {
  fc.assert(
    fc.property(element, (el) => {
      assert.deepEqual(parseXml(serializeElement(el), { maxDepth: 64 }), el);
    }),
    { numRuns: 500 },
  );
});
