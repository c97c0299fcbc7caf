import { Writable } from 'node:stream';
import pino from 'pino';

/**
 * Characters that a terminal obeys rather than shows, and that the names a client chooses may hold
 * (the protocol refuses C0/C1 controls, not these): bidirectional overrides and isolates (U+202E
 * makes `a\u202Etxt.exe` display as `aexe.txt`) and the Unicode line and paragraph separators. pino-pretty
 * prints them raw, so a name could forge or disguise a log line a person reads.
 */
const TERMINAL_TRICKS = /[\u200e\u200f\u2028-\u202e\u2061-\u2069\ufeff]/g;

/** Shown as `\uXXXX`: visible on a terminal, and still the same string when the line is JSON. */
export const escapeTerminalTricks = (text: string): string =>
  text.replace(TERMINAL_TRICKS, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Standard output (synchronously, as the pretty logger needs at exit) with those characters escaped. */
export const terminalSafeStdout = (): Writable => {
  const out = pino.destination({ dest: 1, sync: true });
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      out.write(escapeTerminalTricks(chunk.toString()));
      done();
    },
    final(done) {
      out.flushSync();
      done();
    },
  });
};
