import { RxferError } from '../errors/rxfer-error';
import { parseByteCount } from './protocol-limits';

/**
 * A request line, parsed. UPLOAD and ADDFILE announce the byte count of the data block that follows
 * their name line: that is what lets the decoder frame the data without guessing.
 */
export type Command =
  | { readonly verb: 'UPLOAD' | 'ADDFILE'; readonly size: number }
  | { readonly verb: 'DOWNLOAD' }
  /** Its name line is a folder prefix; an empty line lists everything the user can see. */
  | { readonly verb: 'LIST' }
  /** File operations: one name line each, RENAME two (old, then new). */
  | { readonly verb: 'STAT' | 'DELETE' | 'MKDIR' | 'RENAME' }
  | { readonly verb: 'AUTH'; readonly token: string }
  | { readonly verb: 'QUIT' };

export type Verb = Command['verb'];

/** Verbs whose command line is followed by a name line. */
export const takesName = (command: Command): boolean => command.verb !== 'QUIT' && command.verb !== 'AUTH';

/** STAT, DELETE, RENAME, MKDIR: requests that change or inspect names, with no data. */
export const isFileOp = (command: Command): boolean =>
  command.verb === 'STAT' || command.verb === 'DELETE' || command.verb === 'RENAME' || command.verb === 'MKDIR';

/** How many name lines follow the command line. */
export const nameLines = (command: Command): number => (!takesName(command) ? 0 : command.verb === 'RENAME' ? 2 : 1);

/** Verbs whose name line is followed by a data block and a trailer line. */
export const carriesData = (command: Command): command is Extract<Command, { size: number }> =>
  command.verb === 'UPLOAD' || command.verb === 'ADDFILE';

const badCommand = (message: string): RxferError => new RxferError('BAD_COMMAND', message);

export const parseCommand = (line: string): Command => {
  const [word = '', ...args] = line.trim().split(/ +/);
  const verb = word.toUpperCase();
  switch (verb) {
    case 'UPLOAD':
    case 'ADDFILE': {
      if (args.length !== 1) throw badCommand(`${verb} takes the byte count: ${verb} <size>`);
      const size = parseByteCount(args[0]!);
      if (size === undefined) throw badCommand(`${verb}: ${JSON.stringify(args[0]!.slice(0, 40))} is not a byte count`);
      return { verb, size };
    }
    case 'AUTH':
      if (args.length !== 1 || args[0] === '') throw badCommand('AUTH takes the token: AUTH <user>.<secret>');
      return { verb, token: args[0]! };
    case 'DOWNLOAD':
    case 'LIST':
    case 'STAT':
    case 'DELETE':
    case 'MKDIR':
    case 'RENAME':
    case 'QUIT':
      if (args.length !== 0) throw badCommand(`${verb} takes no arguments (the name goes on the next line)`);
      return { verb };
    case '':
      throw badCommand('empty command line');
    default:
      throw badCommand(`unknown command ${JSON.stringify(word.slice(0, 40))}; expected UPLOAD, ADDFILE, DOWNLOAD, LIST, STAT, DELETE, RENAME, MKDIR, AUTH or QUIT`);
  }
};

const TRAILER = /^SHA256 ([0-9a-fA-F]{64})$/;

/** The line after a data block: the client's SHA-256 of what it sent. */
export const parseTrailer = (line: string): string => {
  const match = TRAILER.exec(line.trim());
  if (!match) throw new RxferError('BAD_TRAILER', `expected "SHA256 <64 hex digits>" after the data, got ${JSON.stringify(line.slice(0, 80))}`);
  return match[1]!.toLowerCase();
};
