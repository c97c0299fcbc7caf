import { RxferError } from '../errors/rxfer-error';
import { DIGEST_HEX, parseByteCount } from './protocol-limits';

/**
 * One file in a LIST answer, or with `folder` one folder (LIST FOLDERS; size 0, no digest).
 * `digest` is undefined where the server does not know it yet.
 */
export interface ListingEntry {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly digest?: string;
  readonly folder?: true;
}

/**
 * A listing line: `<size> <digest or -> <mtime ms> <name>\n`. The name comes last and runs to the end
 * of the line, so it may contain spaces; names never contain a newline (control characters are refused).
 * A folder (LIST FOLDERS only) is `- - <mtime ms> <name>/`: the slash keeps it apart from a file
 * as a LIST AFTER cursor, and a listing only ever shows it to a client that asked.
 */
export const formatListingLine = (entry: ListingEntry): string =>
  entry.folder ? `- - ${Math.floor(entry.mtimeMs)} ${entry.name}/\n` : `${entry.size} ${entry.digest ?? '-'} ${Math.floor(entry.mtimeMs)} ${entry.name}\n`;

/** The name to send after LIST AFTER to go on after `entry`: a folder's with its slash. */
export const listingCursor = (entry: ListingEntry): string => (entry.folder ? `${entry.name}/` : entry.name);

/**
 * Parses a listing body; folder lines only if `folders` were asked for. A client must still check
 * every name: a server can lie (see get -r).
 */
export const parseListing = (body: Buffer, { folders = false }: { readonly folders?: boolean } = {}): ListingEntry[] => {
  const text = body.toString('utf8');
  // Decoding would silently turn invalid bytes into U+FFFD, and the name into another one.
  if (!Buffer.from(text, 'utf8').equals(body)) throw new RxferError('NAME_INVALID', 'the server listed a name that is not valid UTF-8');
  if (text === '') return [];
  if (!text.endsWith('\n')) throw new RxferError('PROTOCOL_VIOLATION', 'listing does not end with a newline');
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      // `[^\n]*`, not `.+`: a name with a carriage return (or an empty one) must reach the name
      // check and be refused there as NAME_INVALID.
      const folder = folders ? /^- - (\d+) ([^\n]*)\/$/.exec(line) : null;
      if (folder) return { name: folder[2]!, size: 0, mtimeMs: Number(folder[1]), folder: true as const };
      const match = /^(\d+) ([0-9a-f]{64}|-) (\d+) ([^\n]*)$/.exec(line);
      const size = match && parseByteCount(match[1]!);
      if (!match || size === undefined || size === null) {
        throw new RxferError('PROTOCOL_VIOLATION', `bad listing line ${JSON.stringify(line.slice(0, 200))}`);
      }
      const digest = match[2] !== '-' && DIGEST_HEX.test(match[2]!) ? match[2] : undefined;
      return { name: match[4]!, size, mtimeMs: Number(match[3]), ...(digest && { digest }) };
    });
};
