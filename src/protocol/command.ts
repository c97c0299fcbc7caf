import { RxferError } from '../errors/rxfer-error';
import { HashAlgorithm, isHashAlgorithm, hashLabel } from '../integrity/hash-algorithm';
import { BATCH_LIMITS, DIGEST_HEX, parseByteCount } from './protocol-limits';

/**
 * Where a resumed transfer starts: the first `offset` bytes are already at the receiving end, and
 * `digest` is the digest of those bytes (in the session's algorithm) as the side that asks has them. The other side checks its
 * own copy of the prefix against it before anything more moves.
 */
export interface ResumePoint {
  readonly offset: number;
  readonly digest: string;
}

/**
 * A request line, parsed. UPLOAD and ADDFILE announce the byte count of the data block that follows
 * their name line: that is what lets the decoder frame the data without guessing.
 */
export type Command =
  /** `size` is the whole file's; with `resume`, only the bytes after `resume.offset` follow. */
  | { readonly verb: 'UPLOAD' | 'ADDFILE'; readonly size: number; readonly resume?: ResumePoint }
  /** With `resume`, the server sends only the bytes after the offset, if its prefix matches. */
  | { readonly verb: 'DOWNLOAD'; readonly resume?: ResumePoint }
  /** Its name line is a folder prefix; an empty line lists everything the user can see. */
  | ({ readonly verb: 'LIST' } & ListShape)
  /**
   * `LIST PAGED` (one name line) and `LIST AFTER` (two: the folder, then the last name of the page
   * before): a listing in pages, in the storage's order, never cut off by limits.maxListEntries.
   */
  | ({ readonly verb: 'LIST'; readonly paged: true; readonly after: boolean } & ListShape)
  /** File operations: one name line each, RENAME two (old, then new). RESUME asks for a kept partial upload. */
  | { readonly verb: 'STAT' | 'DELETE' | 'MKDIR' | 'RENAME' | 'RESUME' }
  | { readonly verb: 'AUTH'; readonly token: string }
  /** Verify this connection's later transfers with another algorithm (one the greeting's `hash` lists). */
  | { readonly verb: 'HASH'; readonly algorithm: string }
  /**
   * Up to `batch-files` small files in one request (greeting `batch-files`, `batch-bytes`): each is an
   * entry line (`<size> <ALGO> <digest>`), its name line and its bytes, with one reply per file.
   */
  | { readonly verb: 'BATCH'; readonly count: number }
  | { readonly verb: 'QUIT' };

/**
 * What a LIST shows besides files, asked for with words after LIST (greeting `list-options`):
 * `FOLDERS` adds a line for each folder, `SHALLOW` lists the folder's own entries, not those below.
 */
export interface ListShape {
  readonly folders?: true;
  readonly shallow?: true;
}

export type Verb = Command['verb'];

/** Verbs whose command line is followed by a name line (BATCH: one per file, after its entry line). */
export const takesName = (command: Command): boolean => command.verb !== 'QUIT' && command.verb !== 'AUTH' && command.verb !== 'HASH' && command.verb !== 'BATCH';

/** Requests that touch storage, and so wait for room in the connection's budget (admit-requests). */
export const isStorageRequest = (command: Command): boolean => takesName(command) || command.verb === 'BATCH';

/** STAT, DELETE, RENAME, MKDIR, RESUME: requests that change or inspect names, with no data. */
export const isFileOp = (command: Command): boolean =>
  command.verb === 'STAT' || command.verb === 'DELETE' || command.verb === 'RENAME' || command.verb === 'MKDIR' || command.verb === 'RESUME';

/** How many name lines follow the command line. */
export const nameLines = (command: Command): number =>
  !takesName(command) ? 0 : command.verb === 'RENAME' || (command.verb === 'LIST' && 'paged' in command && command.after) ? 2 : 1;

/** Verbs whose name line is followed by a data block and a trailer line. */
export const carriesData = (command: Command): command is Extract<Command, { size: number }> =>
  command.verb === 'UPLOAD' || command.verb === 'ADDFILE';

/** The bytes of the data block that follows the name line: the whole file, or what a resume still needs. */
export const owedBytes = (command: Extract<Command, { size: number }>): number => command.size - (command.resume?.offset ?? 0);

const badCommand = (message: string): RxferError => new RxferError('BAD_COMMAND', message);

/**
 * Verbs and keywords are ASCII, matched without regard to ASCII case only. String#toUpperCase and
 * toLowerCase map more than ASCII ('ſtat' and 'ﬆat' upper-case to STAT, a Kelvin sign lower-cases
 * to k): a line that a reviewer, a log or a filter reads as garbage must not run as a request.
 */
const asciiUpper = (word: string): string => word.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
const asciiLower = (word: string): string => word.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
/** ASCII whitespace only: trim() would also drop U+3000, U+00A0, U+FEFF and the like. */
const trimAscii = (line: string): string => line.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');

/** `FROM <offset> <digest>` at the end of an UPLOAD, ADDFILE or DOWNLOAD line. */
const parseResumePoint = (verb: string, args: readonly string[]): ResumePoint => {
  const [keyword = '', offsetText = '', digest = ''] = args;
  const offset = parseByteCount(offsetText);
  if (args.length !== 3 || asciiUpper(keyword) !== 'FROM' || offset === undefined || !DIGEST_HEX.test(digest)) {
    throw badCommand(`${verb}: a resumed transfer ends with FROM <offset> <digest of the first offset bytes>`);
  }
  return { offset, digest: digest.toLowerCase() };
};

export const parseCommand = (line: string): Command => {
  const [word = '', ...args] = trimAscii(line).split(/ +/);
  const verb = asciiUpper(word);
  switch (verb) {
    case 'UPLOAD':
    case 'ADDFILE': {
      if (args.length !== 1 && args.length !== 4) throw badCommand(`${verb} takes the byte count: ${verb} <size> [FROM <offset> <digest>]`);
      const size = parseByteCount(args[0]!);
      if (size === undefined) throw badCommand(`${verb}: ${JSON.stringify(args[0]!.slice(0, 40))} is not a byte count`);
      if (args.length === 1) return { verb, size };
      const resume = parseResumePoint(verb, args.slice(1));
      if (resume.offset > size) throw badCommand(`${verb}: cannot resume at ${resume.offset}, beyond the end of a ${size}-byte file`);
      return { verb, size, resume };
    }
    case 'DOWNLOAD':
      if (args.length === 0) return { verb };
      return { verb, resume: parseResumePoint(verb, args) };
    case 'AUTH':
      if (args.length !== 1 || args[0] === '') throw badCommand('AUTH takes the token: AUTH <user>.<secret>');
      return { verb, token: args[0]! };
    case 'HASH':
      if (args.length !== 1 || args[0] === '') throw badCommand('HASH takes the algorithm: HASH SHA256 or HASH BLAKE3');
      return { verb, algorithm: asciiLower(args[0]!) };
    case 'LIST': {
      // Words in any order, each at most once: PAGED or AFTER, FOLDERS, SHALLOW.
      const words = args.map(asciiUpper);
      const known = ['PAGED', 'AFTER', 'FOLDERS', 'SHALLOW'];
      const form = words.filter((w) => w === 'PAGED' || w === 'AFTER');
      if (words.some((w) => !known.includes(w)) || new Set(words).size !== words.length || form.length > 1) {
        throw badCommand('LIST takes PAGED or AFTER, FOLDERS and SHALLOW, each at most once (the folder, and for AFTER the last name listed, go on the next lines)');
      }
      const shape: ListShape = { ...(words.includes('FOLDERS') && { folders: true }), ...(words.includes('SHALLOW') && { shallow: true }) };
      if (form.length === 0) return { verb, ...shape };
      return { verb, paged: true, after: form[0] === 'AFTER', ...shape };
    }
    case 'BATCH': {
      const count = args.length === 1 ? parseByteCount(args[0]!) : undefined;
      if (count === undefined || count < 1 || count > BATCH_LIMITS.files) {
        throw badCommand(`BATCH takes the number of files, 1 to ${BATCH_LIMITS.files}: BATCH <count> (each file then follows as "<size> <ALGO> <digest>", its name and its bytes)`);
      }
      return { verb, count };
    }
    case 'STAT':
    case 'RESUME':
    case 'DELETE':
    case 'MKDIR':
    case 'RENAME':
    case 'QUIT':
      if (args.length !== 0) throw badCommand(`${verb} takes no arguments (the name goes on the next line)`);
      return { verb };
    case '':
      throw badCommand('empty command line');
    default:
      // Echo the word only when it looks like a verb: a line such as `AUTH<tab>alice.<secret>` is one
      // word, and the reply and the server's log must never carry a token.
      throw badCommand(`unknown command${/^[A-Za-z]{1,12}$/.test(word) ? ` ${JSON.stringify(word)}` : ''}; expected UPLOAD, ADDFILE, BATCH, DOWNLOAD, RESUME, LIST, STAT, DELETE, RENAME, MKDIR, AUTH, HASH or QUIT`);
  }
};

/** The algorithm's name exactly as senders write it (upper-case ASCII), and 64 hex digits. */
const TRAILER = /^([A-Z0-9]+) ([0-9a-fA-F]{64})$/;

/** What the line after a data block says: the algorithm it names and the client's digest of what it sent. */
export interface Trailer {
  readonly hash: HashAlgorithm;
  readonly digest: string;
}

/** `SHA256 <hex>` or `BLAKE3 <hex>`: the trailer names its algorithm, so a mix-up is caught, not misread. */
export const parseTrailer = (line: string): Trailer => {
  const match = TRAILER.exec(trimAscii(line));
  const hash = asciiLower(match?.[1] ?? '');
  if (!match || !isHashAlgorithm(hash)) {
    throw new RxferError('BAD_TRAILER', `expected "SHA256 <64 hex digits>" (or BLAKE3 after HASH BLAKE3) after the data, got ${JSON.stringify(line.slice(0, 80))}`);
  }
  return { hash, digest: match[2]!.toLowerCase() };
};

/** The trailer line a sender writes after its data. */
export const formatTrailer = ({ hash, digest }: Trailer): string => `${hashLabel(hash)} ${digest}\n`;

/** One file of a BATCH: its byte count and the digest its sender declares for those bytes. */
export interface BatchEntry {
  readonly size: number;
  readonly declared: Trailer;
}

const BATCH_ENTRY = /^(0|[1-9][0-9]{0,15}) ([A-Z0-9]+) ([0-9a-fA-F]{64})$/;

/**
 * `<size> <ALGO> <digest>`: what follows is the file's name line and then exactly `size` bytes. A line
 * that is not one cannot be followed (how many bytes come next is unknown): BAD_COMMAND, which closes.
 */
export const parseBatchEntry = (line: string): BatchEntry => {
  const match = BATCH_ENTRY.exec(trimAscii(line));
  const size = match ? parseByteCount(match[1]!) : undefined;
  const hash = asciiLower(match?.[2] ?? '');
  if (!match || size === undefined || !isHashAlgorithm(hash)) {
    throw badCommand(`a BATCH file starts with "<size> SHA256 <64 hex digits>" (or BLAKE3 after HASH BLAKE3), got ${JSON.stringify(line.slice(0, 80))}`);
  }
  return { size, declared: { hash, digest: match[3]!.toLowerCase() } };
};

/** The entry line a sender writes before a BATCH file's name. */
export const formatBatchEntry = (size: number, { hash, digest }: Trailer): string => `${size} ${hashLabel(hash)} ${digest}\n`;
