/**
 * Every failure rxfer reports has one of these stable codes. The table with their meaning lives in
 * docs/PROTOCOL.md; a code is never renamed once released, because scripts match on it.
 */
export const ERROR_CODES = [
  // Sent by the server.
  'BAD_COMMAND',
  'LINE_TOO_LONG',
  'BAD_TRAILER',
  'NAME_INVALID',
  'NAME_CONFLICT',
  'NOT_FOUND',
  'EXISTS',
  'TOO_LARGE',
  'NO_SPACE',
  'CHECKSUM_MISMATCH',
  /** A resume whose prefix does not match the data kept (or none is kept): start again from 0. */
  'RESUME_MISMATCH',
  'STORAGE_FAILED',
  /**
   * The change was made (the file is in place, deleted or renamed) but its folder's fsync failed, so
   * a crash could still undo it: unlike STORAGE_FAILED, not "nothing committed". The client raises it
   * too, for a download renamed into place whose folder's fsync failed (local-io.ts).
   */
  'NOT_DURABLE',
  'IDLE_TIMEOUT',
  'STALLED',
  'AUTH_REQUIRED',
  'AUTH_FAILED',
  'FORBIDDEN',
  'QUOTA_EXCEEDED',
  'BUSY',
  /** HASH named an algorithm this server does not offer; the connection stays on the one it had. */
  'HASH_UNSUPPORTED',
  'TOO_MANY_CONNECTIONS',
  'SHUTTING_DOWN',
  'INTERNAL',
  // Raised on the client side.
  'CONNECTION_LOST',
  'PROTOCOL_VIOLATION',
  'LOCAL_IO',
  'CONFIG_INVALID',
  /** The command line asks for something that cannot work as written (a folder without -r, …): exit 2. */
  'USAGE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN = new Set<string>(ERROR_CODES);
export const isErrorCode = (value: string): value is ErrorCode => KNOWN.has(value);

/**
 * Errors after which the byte stream can no longer be trusted to be in step (or the server chose to
 * end the session): the server closes the connection after sending them.
 */
const CLOSES_CONNECTION = new Set<ErrorCode>([
  'BAD_COMMAND',
  'LINE_TOO_LONG',
  'BAD_TRAILER',
  'IDLE_TIMEOUT',
  'STALLED',
  // A failed login ends the connection: each guess costs a new TCP (and TLS) handshake.
  'AUTH_FAILED',
  'TOO_MANY_CONNECTIONS',
  'SHUTTING_DOWN',
  'INTERNAL',
]);

export const closesConnection = (code: ErrorCode): boolean => CLOSES_CONNECTION.has(code);
