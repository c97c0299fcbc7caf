import fc from 'fast-check';
import { RxferError } from '../../../src/errors/rxfer-error';
import { parseRemoteName } from '../../../src/protocol/remote-name';

/**
 * parseRemoteName checks ASCII names without its UTF-8 round trips (issue 20: it runs for every
 * file a tree copy sends, on both ends). Its answer must be the one the round trips gave, for every
 * input: the same name, or a refusal for the same reason. `reference` is the validation as it was
 * before that fast path (segment rules aside, which both share: the refusal's reason is compared).
 */
const reference = (raw: Buffer | string): { name: string } | { reason: string } => {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const text = bytes.toString('utf8');
  if (bytes.length === 0) return { reason: 'empty name' };
  if (!Buffer.from(text, 'utf8').equals(bytes)) return { reason: 'not valid UTF-8' };
  // The rest of the rules run on `text`, as in parseRemoteName: give it the decoded string.
  return outcome(text);
};

const outcome = (raw: Buffer | string): { name: string } | { reason: string } => {
  try {
    return { name: parseRemoteName(raw) };
  } catch (err) {
    if (!(err instanceof RxferError) || err.code !== 'NAME_INVALID') throw err;
    return { reason: String(err.detail?.reason) };
  }
};

/** Bytes that matter to the rules: ASCII letters, separators, dots, spaces, controls, UTF-8 lead and continuation bytes. */
const nameByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Buffer.from('aZ09-_./ .rxfer')) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1f }) },
  { weight: 1, arbitrary: fc.constantFrom(0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xa9, 0xe2, 0x80, 0xae, 0xed, 0xa0, 0xef, 0xbf, 0xbd, 0xf0, 0x9f, 0xff) },
);

describe('parseRemoteName: the ASCII fast path answers as the full check does', () => {
  test('random bytes: the same name or the same reason', () => {
    fc.assert(
      fc.property(fc.array(nameByte, { maxLength: 24 }), (byteList) => {
        const raw = Buffer.from(byteList);
        expect(outcome(raw)).toEqual(reference(raw));
      }),
      { numRuns: 1000 },
    );
  });

  test('random strings (lone surrogates, NFD, controls): the same name or the same reason', () => {
    const piece = fc.constantFrom('a', 'B', '/', '.', ' ', '.rxfer', 'con', '\u0000', '\u001b', '\u0085', 'é', 'e\u0301', '\ud800', '\udc00', '😀', '\ufffd', '\\', 'c:');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), (pieces) => {
        const raw = pieces.join('');
        expect(outcome(raw)).toEqual(reference(raw));
      }),
      { numRuns: 1000 },
    );
  });

  test('bytes that decode to as many characters as bytes but are not ASCII are refused as UTF-8', () => {
    // Each invalid byte decodes to one U+FFFD: the lengths agree, the bytes are still not UTF-8.
    for (const bytes of [[0x61, 0xff, 0x62], [0x80], [0xc0, 0x61], [0x61, 0xed]]) {
      expect(outcome(Buffer.from(bytes))).toEqual({ reason: 'not valid UTF-8' });
    }
    // U+FFFD written out properly (three bytes) is a name like any other.
    expect(outcome(Buffer.from('a\ufffdb'))).toEqual({ name: 'a\ufffdb' });
  });
});
