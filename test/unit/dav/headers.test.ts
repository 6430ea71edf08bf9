import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseDepth } from '../../../dav/headers/depth.js';
import { parseOverwrite } from '../../../dav/headers/overwrite.js';
import { parseTimeout } from '../../../dav/headers/timeout.js';
import { parseDestination } from '../../../dav/headers/destination.js';
import { parseRange } from '../../../dav/headers/range.js';
import { evaluateConditionals, ifRangeAllows, parseEtagList, strongMatch, weakMatch } from '../../../dav/headers/conditional.js';
import { parseHttpDate } from '../../../dav/headers/http-date.js';
import { parseIf, type IfCondition } from '../../../dav/headers/if.js';
import { DavError } from '../../../dav/errors.js';

const status = (fn: () => unknown): number => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DavError, `expected a DavError, got ${String(err)}`);
    return err.status;
  }
  return 0;
};

test('Depth: 0, 1, infinity (any case), the fallback when absent, 400 otherwise', () => {
  assert.equal(parseDepth('0', 'infinity'), 0);
  assert.equal(parseDepth(' 1 ', 0), 1);
  assert.equal(parseDepth('Infinity', 0), 'infinity');
  assert.equal(parseDepth(undefined, 1), 1);
  for (const bad of ['2', '', '-1', 'inf', '0,1']) assert.equal(status(() => parseDepth(bad, 0)), 400, bad);
});

test('Overwrite: T by default, T/F in any case, 400 otherwise', () => {
  assert.equal(parseOverwrite(undefined), true);
  assert.equal(parseOverwrite('T'), true);
  assert.equal(parseOverwrite('f'), false);
  for (const bad of ['yes', '', 'TF', '1']) assert.equal(status(() => parseOverwrite(bad)), 400, bad);
});

test('Timeout: the client preference list, Infinite as Infinity, garbage skipped', () => {
  assert.deepEqual(parseTimeout(undefined), []);
  assert.deepEqual(parseTimeout('Second-3600'), [3600]);
  assert.deepEqual(parseTimeout('Infinite, Second-4100000000'), [Infinity, 4100000000]);
  assert.deepEqual(parseTimeout('Minute-5, second-10, Second-x'), [10]);
  assert.deepEqual(parseTimeout('Second-99999999999999999999'), []);
});

test('Destination: absolute path or same-host URI; other hosts 502; unsafe paths 400', () => {
  assert.deepEqual(parseDestination('/a/b', 'h:1'), { path: '/a/b', trailingSlash: false });
  assert.deepEqual(parseDestination('http://h:1/a/%20b/', 'h:1'), { path: '/a/ b', trailingSlash: true });
  assert.deepEqual(parseDestination('http://H/x', 'h:80'), { path: '/x', trailingSlash: false });
  assert.deepEqual(parseDestination('https://h/x', 'h:443'), { path: '/x', trailingSlash: false });
  assert.equal(status(() => parseDestination('http://evil:1/a', 'h:1')), 502);
  assert.equal(status(() => parseDestination('http://h:2/a', 'h:1')), 502);
  assert.equal(status(() => parseDestination('ftp://h:1/a', 'h:1')), 502);
  assert.equal(status(() => parseDestination('http://h:1/a', undefined)), 502);
  assert.equal(status(() => parseDestination(undefined, 'h:1')), 400);
  assert.equal(status(() => parseDestination('a/b', 'h:1')), 400);
  assert.equal(status(() => parseDestination('http://u@h:1/a', 'h:1')), 400);
  for (const p of ['/../x', '/a/%2e%2e/x', '/a/%2E%2e/%2e%2e/x', '/a%2fb', '/a\\b', '/a%00b', 'http://h:1/a/../../x']) {
    assert.equal(status(() => parseDestination(p, 'h:1')), 400, p);
  }
  // An encoded backslash is part of one name on POSIX hosts (dav/paths.ts).
  if (process.platform === 'win32') assert.equal(status(() => parseDestination('/a%5cb', 'h:1')), 400);
  else assert.deepEqual(parseDestination('/a%5c..%5cb', 'h:1'), { path: '/a\\..\\b', trailingSlash: false });
});

test('Range: single, suffix, open-ended, multiple in order, merged when overlapping', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100, 8), [{ start: 0, end: 9 }]);
  assert.deepEqual(parseRange('bytes=-10', 100, 8), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=95-', 100, 8), [{ start: 95, end: 99 }]);
  assert.deepEqual(parseRange('bytes=90-200', 100, 8), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=50-59, 0-9', 100, 8), [{ start: 50, end: 59 }, { start: 0, end: 9 }]);
  assert.deepEqual(parseRange('bytes=0-50,10-20,51-60', 100, 8), [{ start: 0, end: 60 }]);
  assert.deepEqual(parseRange('bytes=-200', 100, 8), [{ start: 0, end: 99 }]);
});

test('Range: unsatisfiable, ignored (syntax, other unit, too many) and absent', () => {
  assert.equal(parseRange('bytes=100-', 100, 8), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100, 8), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0, 8), 'unsatisfiable');
  assert.equal(parseRange(undefined, 100, 8), null);
  assert.equal(parseRange('items=0-1', 100, 8), null);
  assert.equal(parseRange('bytes=9-1', 100, 8), null);
  assert.equal(parseRange('bytes=a-b', 100, 8), null);
  assert.equal(parseRange('bytes=-', 100, 8), null);
  assert.equal(parseRange('bytes=0-1,3-4,6-7', 100, 2), null);
  assert.deepEqual(parseRange('bytes=' + Array(8).fill('0-').join(','), 100, 2), [{ start: 0, end: 99 }]);
});

/** The bytes of a `size`-byte file that Range specs ask for, by RFC 9110 §14.1.2, or why there are none. */
function rangeModel(specs: string[], size: number): Set<number> | 'invalid' | 'unsatisfiable' {
  const asked = new Set<number>();
  let satisfiable = false;
  const take = (from: number, to: number) => {
    satisfiable = true;
    for (let i = from; i <= to; i++) asked.add(i);
  };
  for (const spec of specs) {
    const [a = '', b = ''] = spec.split('-');
    if (a === '') {
      if (Number(b) > 0 && size > 0) take(Math.max(0, size - Number(b)), size - 1);
    } else if (b !== '' && Number(b) < Number(a)) return 'invalid';
    else if (Number(a) < size) take(Number(a), b === '' ? size - 1 : Math.min(Number(b), size - 1));
  }
  return satisfiable ? asked : 'unsatisfiable';
}

test('property: Range serves exactly the bytes asked, none twice, within the file, or says why not', () => {
  const spec = fc.oneof(
    fc.tuple(fc.nat(60), fc.option(fc.nat(60), { nil: undefined })).map(([a, b]) => `${a}-${b ?? ''}`),
    fc.nat(60).map((n) => `-${n}`),
  );
  fc.assert(
    fc.property(fc.nat(40), fc.integer({ min: 1, max: 5 }), fc.array(spec, { minLength: 1, maxLength: 12 }), fc.constantFrom(',', ', ', ' ,'), (size, max, specs, sep) => {
      const got = parseRange(`bytes=${specs.join(sep)}`, size, max);
      const model = rangeModel(specs, size);
      if (model === 'invalid' || specs.length > max * 4) return assert.equal(got, null);
      if (model === 'unsatisfiable') return assert.equal(got, 'unsatisfiable');
      if (got === 'unsatisfiable') return assert.fail('416, yet some of the ranges are satisfiable');
      if (got === null) return assert.ok(specs.length > max, 'ignored only for having more ranges than allowed');
      assert.ok(got.length <= max);
      const served: number[] = [];
      for (const r of got) {
        assert.ok(r.start >= 0 && r.start <= r.end && r.end < size, JSON.stringify(r));
        for (let i = r.start; i <= r.end; i++) served.push(i);
      }
      assert.equal(new Set(served).size, served.length, 'a byte served twice');
      assert.deepEqual(served.sort((x, y) => x - y), [...model].sort((x, y) => x - y));
    }),
    { numRuns: 1000 },
  );
});

test('entity tags: lists, strong and weak comparison', () => {
  assert.deepEqual(parseEtagList('"a", W/"b" ,"c"'), ['"a"', 'W/"b"', '"c"']);
  assert.equal(parseEtagList(' * '), '*');
  assert.ok(strongMatch('"a"', '"a"'));
  assert.ok(!strongMatch('W/"a"', '"a"'));
  assert.ok(weakMatch('W/"a"', '"a"'));
  assert.ok(!weakMatch('"a"', '"b"'));
});

test('conditionals follow RFC 9110 §13.2.2', () => {
  const lm = new Date('2024-01-02T03:04:05Z');
  const v = { etag: '"x"', lastModified: lm };
  const none = { etag: null, lastModified: null };
  const before = 'Mon, 01 Jan 2024 00:00:00 GMT';
  const same = lm.toUTCString();
  assert.equal(evaluateConditionals('GET', {}, v), 'proceed');
  assert.equal(evaluateConditionals('PUT', { 'if-match': '"y"' }, v), 412);
  assert.equal(evaluateConditionals('PUT', { 'if-match': '"x"' }, v), 'proceed');
  assert.equal(evaluateConditionals('PUT', { 'if-match': '*' }, none), 412);
  assert.equal(evaluateConditionals('PUT', { 'if-match': 'W/"x"' }, v), 412);
  assert.equal(evaluateConditionals('PUT', { 'if-none-match': '*' }, v), 412);
  assert.equal(evaluateConditionals('PUT', { 'if-none-match': '*' }, none), 'proceed');
  assert.equal(evaluateConditionals('GET', { 'if-none-match': 'W/"x"' }, v), 304);
  assert.equal(evaluateConditionals('HEAD', { 'if-none-match': '"a", "x"' }, v), 304);
  assert.equal(evaluateConditionals('GET', { 'if-modified-since': same }, v), 304);
  assert.equal(evaluateConditionals('GET', { 'if-modified-since': before }, v), 'proceed');
  assert.equal(evaluateConditionals('GET', { 'if-modified-since': 'garbage' }, v), 'proceed');
  assert.equal(evaluateConditionals('PUT', { 'if-modified-since': same }, v), 'proceed');
  assert.equal(evaluateConditionals('PUT', { 'if-unmodified-since': before }, v), 412);
  assert.equal(evaluateConditionals('PUT', { 'if-unmodified-since': same }, v), 'proceed');
  // If-Match wins over If-Unmodified-Since, If-None-Match over If-Modified-Since.
  assert.equal(evaluateConditionals('PUT', { 'if-match': '"x"', 'if-unmodified-since': before }, v), 'proceed');
  assert.equal(evaluateConditionals('GET', { 'if-none-match': '"z"', 'if-modified-since': same }, v), 'proceed');
});

test('property: conditionals and If-Range give what the steps of RFC 9110 give, read from the parts the headers were written from', () => {
  // Tags and dates are generated as data and written out; the model decides on the data alone, step by step.
  const tag = fc.record({ weak: fc.boolean(), opaque: fc.constantFrom('a', 'b', '') });
  type Tag = { weak: boolean; opaque: string };
  const write = (t: Tag) => `${t.weak ? 'W/' : ''}"${t.opaque}"`;
  const etagField = fc.option(fc.oneof(fc.constant('*' as const), fc.array(tag, { minLength: 1, maxLength: 3 })), { nil: undefined });
  // A date a few seconds around Last-Modified, as an HTTP-date or as ISO 8601, which Date.parse takes but HTTP does not:
  // a condition with no HTTP-date is ignored.
  const dateField = fc.option(fc.record({ offset: fc.integer({ min: -2, max: 2 }), http: fc.boolean() }), { nil: undefined });
  const resource = fc.option(fc.record({ tag, lastModified: fc.integer({ min: 1e12, max: 2e12 }) }), { nil: null });
  fc.assert(
    fc.property(fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'PROPPATCH'), resource, etagField, etagField, dateField, dateField, (method, res, im, inm, ius, ims) => {
      const lmSeconds = res === null ? null : Math.floor(res.lastModified / 1000);
      const dateText = (f: { offset: number; http: boolean } | undefined) => {
        const d = f && new Date(((lmSeconds ?? 1.5e9) + f.offset) * 1000);
        return d && (f.http ? d.toUTCString() : d.toISOString());
      };
      const listText = (f: '*' | Tag[] | undefined) => (f === undefined ? undefined : f === '*' ? '*' : f.map(write).join(', '));
      const headers = { 'if-match': listText(im), 'if-none-match': listText(inm), 'if-unmodified-since': dateText(ius), 'if-modified-since': dateText(ims) };
      const v = res === null ? { etag: null, lastModified: null } : { etag: write(res.tag), lastModified: new Date(res.lastModified) };

      const strong = (a: Tag, b: Tag) => !a.weak && !b.weak && a.opaque === b.opaque;
      const weak = (a: Tag, b: Tag) => a.opaque === b.opaque;
      const readOnly = method === 'GET' || method === 'HEAD';
      const model = (): 'proceed' | 304 | 412 => {
        // Step 1: If-Match; step 2: otherwise If-Unmodified-Since (ignored without a valid date or a Last-Modified).
        if (im !== undefined) {
          if (!(res !== null && (im === '*' || im.some((t) => strong(t, res.tag))))) return 412;
        } else if (ius?.http && lmSeconds !== null && ius.offset < 0) {
          return 412; // modified after the date given
        }
        // Step 3: If-None-Match; step 4: otherwise If-Modified-Since, for GET and HEAD only.
        if (inm !== undefined) {
          if (res !== null && (inm === '*' || inm.some((t) => weak(t, res.tag)))) return readOnly ? 304 : 412;
        } else if (readOnly && ims?.http && lmSeconds !== null && ims.offset >= 0) {
          return 304; // not modified since the date given
        }
        return 'proceed';
      };
      assert.equal(evaluateConditionals(method, headers, v), model(), `${method} ${JSON.stringify(headers)} on ${JSON.stringify(v)}`);
      // If-Range (§13.1.5) with the same parts: a tag must match strongly, a date must be Last-Modified exactly.
      const rangeTag = Array.isArray(im) ? im[0] : undefined;
      if (rangeTag) assert.equal(ifRangeAllows(write(rangeTag), v), res !== null && strong(rangeTag, res.tag), write(rangeTag));
      if (ius) assert.equal(ifRangeAllows(headers['if-unmodified-since'], v), ius.http && lmSeconds !== null && ius.offset === 0, headers['if-unmodified-since']);
    }),
    { numRuns: 3000 },
  );
});

test('If-Range: strong tag or exact date', () => {
  const v = { etag: '"x"', lastModified: new Date('2024-01-02T03:04:05Z') };
  assert.ok(ifRangeAllows(undefined, v));
  assert.ok(ifRangeAllows('"x"', v));
  assert.ok(!ifRangeAllows('"y"', v));
  assert.ok(!ifRangeAllows('W/"x"', v));
  assert.ok(ifRangeAllows('Tue, 02 Jan 2024 03:04:05 GMT', v));
  assert.ok(!ifRangeAllows('Tue, 02 Jan 2024 03:04:06 GMT', v));
  assert.ok(!ifRangeAllows('nonsense', v));
});

test('If: untagged and tagged lists, Not, tokens and entity tags parse to data', () => {
  assert.deepEqual(parseIf('(<urn:uuid:1>)'), [{ resource: null, conditions: [{ not: false, token: 'urn:uuid:1' }] }]);
  assert.deepEqual(parseIf('(<urn:uuid:1> ["e"]) (Not <DAV:no-lock>)'), [
    { resource: null, conditions: [{ not: false, token: 'urn:uuid:1' }, { not: false, etag: '"e"' }] },
    { resource: null, conditions: [{ not: true, token: 'DAV:no-lock' }] },
  ]);
  assert.deepEqual(parseIf('<http://h/a> (<t1>) (Not[W/"e"]) </b> (<t2>)'), [
    { resource: 'http://h/a', conditions: [{ not: false, token: 't1' }] },
    { resource: 'http://h/a', conditions: [{ not: true, etag: 'W/"e"' }] },
    { resource: '/b', conditions: [{ not: false, token: 't2' }] },
  ]);
  assert.deepEqual(parseIf('(NOT <a>)'), [{ resource: null, conditions: [{ not: true, token: 'a' }] }]);
});

test('If: malformed headers are 400', () => {
  for (const bad of ['', '   ', '()', '(<a>', '<http://h/a>', '(<a>) <http://h/b> (<c>)', '([bad])', '(<a b>)', 'foo', '(Not)', '(<a>) x', '<>(<a>)']) {
    assert.equal(status(() => parseIf(bad)), 400, bad);
  }
});

test('property: an If header written from the grammar parses back to its lists; any cut or insertion is that or a 400', () => {
  const condition = fc.oneof(
    fc.record({ not: fc.boolean(), token: fc.constantFrom('urn:uuid:1', 'opaquelocktoken:a-b', 'DAV:no-lock') }),
    fc.record({ not: fc.boolean(), etag: fc.constantFrom('"e1"', 'W/"w"', '""') }),
  );
  const lists = fc.array(fc.array(condition, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 });
  const groups = fc.oneof(
    lists.map((ls) => [{ resource: null, lists: ls }]),
    fc.array(fc.record({ resource: fc.constantFrom('http://h/a', '/b%20c', '/'), lists }), { minLength: 1, maxLength: 3 }),
  );
  const ws = fc.constantFrom('', ' ', '  ', '\t');
  const noise = fc.constantFrom('(', ')', '<', '>', '[', ']', 'Not ', ' ', '"', 'x');
  fc.assert(
    fc.property(groups, ws, fc.nat(), fc.option(noise, { nil: undefined }), (gs, space, at, inserted) => {
      const text = (c: IfCondition) => `${c.not ? 'Not ' : ''}${c.token !== undefined ? `<${c.token}>` : `[${c.etag}]`}`;
      const header = gs
        .map((g) => `${g.resource === null ? '' : `<${g.resource}>${space}`}${g.lists.map((l) => `(${l.map(text).join(' ')})`).join(space)}`)
        .join(' ');
      const expected = gs.flatMap((g) => g.lists.map((l) => ({ resource: g.resource, conditions: l.map((c) => ({ ...c })) })));
      assert.deepEqual(parseIf(header), expected, header);
      // One piece cut out, or one inserted: a 400 or lists of well-formed conditions, never a crash.
      const k = at % (header.length + 1);
      const broken = inserted === undefined ? header.slice(0, k) + header.slice(k + 1) : header.slice(0, k) + inserted + header.slice(k);
      try {
        for (const list of parseIf(broken)) {
          assert.ok(list.conditions.length > 0, broken);
          for (const c of list.conditions) assert.ok((c.token === undefined) !== (c.etag === undefined), broken);
        }
      } catch (err) {
        assert.ok(err instanceof DavError && err.status === 400, `${JSON.stringify(broken)}: ${String(err)}`);
      }
    }),
    { numRuns: 1000 },
  );
});

test('property: HTTP-dates in all three forms parse to their instant; anything else, even what Date.parse takes, is no date', () => {
  const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const two = (n: number) => String(n).padStart(2, '0');
  fc.assert(
    fc.property(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), (raw) => {
      const d = new Date(Math.floor(raw.getTime() / 1000) * 1000);
      const [wd, , mon] = d.toUTCString().split(' ') as [string, string, string];
      const time = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
      assert.equal(parseHttpDate(d.toUTCString())?.getTime(), d.getTime(), d.toUTCString());
      const asctime = `${wd.slice(0, 3)} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${d.getUTCFullYear()}`;
      assert.equal(parseHttpDate(asctime)?.getTime(), d.getTime(), asctime);
      const year = d.getUTCFullYear();
      const rfc850 = `${DAYS[d.getUTCDay()] as string}, ${two(d.getUTCDate())}-${mon}-${two(year % 100)} ${time} GMT`;
      // Two digits name the year within 50 years from now, back to the past century (RFC 9110 §5.6.7).
      const now = new Date().getUTCFullYear();
      if (year > now - 49 && year <= now + 50) assert.equal(parseHttpDate(rfc850)?.getTime(), d.getTime(), rfc850);
      for (const other of [d.toISOString(), d.toString(), String(d.getUTCFullYear()), d.toUTCString().replace(' GMT', ' UTC'), d.toUTCString().toLowerCase()]) {
        assert.equal(parseHttpDate(other), null, other);
      }
    }),
    { numRuns: 500 },
  );
  assert.equal(parseHttpDate('1'), null, 'Date.parse reads this as 2001');
  assert.equal(parseHttpDate('Sat, 31 Feb 2026 00:00:00 GMT'), null);
  assert.equal(parseHttpDate('Sat, 21 Nov 2026 24:00:00 GMT'), null);
  const v = { etag: '"x"', lastModified: new Date('2026-01-01T00:00:00Z') };
  assert.equal(evaluateConditionals('PUT', { 'if-unmodified-since': '1' }, v), 'proceed', 'a condition that is no date is ignored');
  assert.equal(evaluateConditionals('GET', { 'if-modified-since': '2030' }, v), 'proceed', 'a condition that is no date is ignored');
});
