import fc from 'fast-check';
import { TEMP_NAME } from '../../dav/paths.js';

/** Characters of file names: the ones URLs and XML give meaning to (CR and a C0 control too), often, and any code point. */
const nameChar = fc.oneof(
  fc.constantFrom(...Array.from('%#?;:@&=+$,\\ .~\'"<>[]{}|^`\r\n\t\u0001aZ09-_é€\u{10000}\u{1F600}')),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

/**
 * A name a file may have on this host that a request may address: valid UTF-8 (a URL carries UTF-8), no separator
 * or NUL, not a dot name, not one of the server's temporaries, and no backslash where it separates (Windows).
 */
export const addressableName: fc.Arbitrary<string> = fc
  .string({ unit: nameChar, minLength: 1, maxLength: 10 })
  .filter((s) => !/\p{Cs}/u.test(s) && s !== '.' && s !== '..' && !/[/\0]/.test(s) && !TEMP_NAME.test(s) && !(process.platform === 'win32' && s.includes('\\')));
