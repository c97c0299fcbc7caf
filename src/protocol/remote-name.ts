import { RxferError } from '../errors/rxfer-error';
import { MAX_NAME_BYTES, MAX_SEGMENT_BYTES } from './protocol-limits';

/**
 * A file name as rxfer accepts it on the wire: a relative, `/`-separated path that means the same
 * thing on every operating system. Branded so that only `parseRemoteName` can make one: every command
 * that touches storage takes a RemoteName, so no path can skip the checks.
 */
export type RemoteName = string & { readonly __brand: 'RemoteName' };

// C0 and C1 controls, DEL: these include NUL and the ESC that starts ANSI sequences.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Device names Windows resolves in any folder, with or without an extension ("nul.txt" is NUL too).
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
const DRIVE_LETTER = /^[a-z]:/i;
const ASCII = /^[\u0000-\u007f]*$/;
/** Segments the server keeps for its own staging and metadata files. */
export const RESERVED_PREFIX = '.rxfer';

const invalid = (raw: string, reason: string): RxferError =>
  new RxferError('NAME_INVALID', `${JSON.stringify(raw.slice(0, 300))}: ${reason}`, { reason });

const segmentProblem = (segment: string): string | undefined => {
  if (segment === '') return 'empty path segment';
  if (segment === '.' || segment === '..') return `"${segment}" segments are not allowed`;
  if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  if (WINDOWS_DEVICE.test(segment)) return 'reserved device name';
  if (/[. ]$/.test(segment)) return 'a segment ends in a dot or a space';
  if (segment.toLowerCase().startsWith(RESERVED_PREFIX)) return `segments starting with ${RESERVED_PREFIX} are reserved`;
  return undefined;
};

/**
 * Checks a name from the wire (as raw bytes, so invalid UTF-8 is caught rather than replaced) and
 * returns it, or throws NAME_INVALID with the reason. Pure: containment after symlink resolution is
 * the storage adapter's job, and it only ever sees names that passed here.
 */
export const parseRemoteName = (raw: Buffer | string): RemoteName => {
  // Most names are ASCII: valid UTF-8 and NFC as they are, one byte a character. Checked without
  // the round trips below, which cost a buffer or two per name, on every request and every file
  // of a tree copy (the client checks each name it sends, the server each it receives).
  const ascii = typeof raw === 'string' ? ASCII.test(raw) : undefined;
  const bytes = ascii === true ? undefined : typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const text = bytes === undefined ? (raw as string) : bytes.toString('utf8');
  const byteLength = bytes === undefined ? text.length : bytes.length;
  if (byteLength === 0) throw invalid(text, 'empty name');
  // From bytes: as many characters as bytes and no U+FFFD (what each invalid byte decodes to) is ASCII.
  const valid = bytes === undefined || (text.length === bytes.length && !text.includes('\uFFFD')) || Buffer.from(text, 'utf8').equals(bytes);
  if (!valid) throw invalid(text, 'not valid UTF-8');
  if (byteLength > MAX_NAME_BYTES) throw invalid(text, `longer than ${MAX_NAME_BYTES} bytes`);
  if (CONTROL.test(text)) throw invalid(text, 'control characters are not allowed');
  // One name, one spelling: "é" as U+00E9 and as e + U+0301 would otherwise be two files that
  // every listing shows alike. ASCII (as many bytes as UTF-16 units) is always NFC.
  if (byteLength !== text.length && text.normalize('NFC') !== text) {
    throw invalid(text, 'not in Unicode NFC; send the name normalised to NFC (String.prototype.normalize("NFC"))');
  }
  if (text.includes('\\')) throw invalid(text, 'backslashes are not allowed');
  if (text.startsWith('/')) throw invalid(text, 'absolute paths are not allowed');
  if (DRIVE_LETTER.test(text)) throw invalid(text, 'drive letters are not allowed');
  for (const segment of text.split('/')) {
    const problem = segmentProblem(segment);
    if (problem) throw invalid(text, problem);
  }
  return text as RemoteName;
};

/**
 * Names for terminals and logs: control characters, and the bidirectional and line-separator
 * characters that can make a name display as another (U+202E "right-to-left override"), shown as
 * escapes, never interpreted.
 */
export const printableName = (name: string): string =>
  name.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (ch) => {
    const code = ch.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
