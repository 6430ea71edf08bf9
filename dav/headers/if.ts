import { badRequest } from '../errors.js';

/**
 * The WebDAV If header (RFC 4918 §10.4), parsed to data. Evaluation against locks and entity tags happens
 * elsewhere (`dav/preconditions.ts`), so that this stays a pure function of the header text.
 *
 *   If = 1*No-tag-list | 1*Tagged-list
 *   Tagged-list = "<" Simple-ref ">" 1*List        List = "(" 1*Condition ")"
 *   Condition = ["Not"] ( "<" Coded-URL ">" | "[" entity-tag "]" )
 */

/** One condition: a state token (lock token) or an entity tag, possibly negated. */
export type IfCondition = { not: boolean; token: string; etag?: undefined } | { not: boolean; etag: string; token?: undefined };

/** One parenthesised list; all its conditions must hold. `resource` is the tag (raw URI) or null when untagged. */
export interface IfList {
  resource: string | null;
  conditions: IfCondition[];
}

/** Parse an If header. Throws DavError 400 on a syntax error; the header holds if any list holds. */
export function parseIf(value: string): IfList[] {
  const s = value;
  let i = 0;
  const lists: IfList[] = [];
  let tagged: boolean | null = null;
  let tag: string | null = null;
  const ws = () => {
    while (i < s.length && /[ \t\r\n]/.test(s[i] as string)) i++;
  };
  const fail = (what: string): never => {
    throw badRequest('DAV_ERR_BAD_IF', `malformed If header at offset ${i}: ${what}`);
  };
  const until = (close: string): string => {
    const j = s.indexOf(close, i);
    if (j < 0) fail(`missing ${close}`);
    const out = s.slice(i, j);
    i = j + 1;
    return out;
  };
  ws();
  if (i >= s.length) fail('empty');
  while (i < s.length) {
    if (s[i] === '<') {
      if (tagged === false) fail('a resource tag after untagged lists');
      tagged = true;
      i++;
      tag = until('>').trim();
      if (tag === '') fail('empty resource tag');
      ws();
      if (s[i] !== '(') fail('a resource tag must be followed by a list');
      continue;
    }
    if (s[i] !== '(') fail(`unexpected "${s[i]}"`);
    if (tagged === null) tagged = false;
    i++;
    const conditions: IfCondition[] = [];
    for (;;) {
      ws();
      if (s[i] === ')') {
        i++;
        break;
      }
      let not = false;
      if (s.slice(i, i + 3).toLowerCase() === 'not') {
        not = true;
        i += 3;
        ws();
      }
      if (s[i] === '<') {
        i++;
        const token = until('>').trim();
        if (token === '' || /\s/.test(token)) fail('bad state token');
        conditions.push({ not, token });
      } else if (s[i] === '[') {
        i++;
        const etag = until(']').trim();
        if (!/^(W\/)?"[^"]*"$/.test(etag)) fail('bad entity tag');
        conditions.push({ not, etag });
      } else {
        fail(i >= s.length ? 'unterminated list' : `unexpected "${s[i]}" in a list`);
      }
    }
    if (conditions.length === 0) fail('empty list');
    lists.push({ resource: tagged ? tag : null, conditions });
    ws();
  }
  return lists;
}
