import type { ErrorCode } from '../errors/error-code';
import { RxferError, toRxferError } from '../errors/rxfer-error';

export const EXIT_OK = 0;
/** A transfer or server failure. */
export const EXIT_FAILED = 1;
/** The command line (or the config it names) is wrong; retrying the same thing cannot work. */
export const EXIT_USAGE = 2;
/** 128 + SIGINT, as shells report it. */
export const EXIT_INTERRUPTED = 130;
/** 128 + SIGTERM. */
export const EXIT_TERMINATED = 143;

const USAGE_CODES = new Set<ErrorCode>(['CONFIG_INVALID']);

/** Prints `rxfer: ERR <CODE> <message>` on stderr (stable for scripts) and returns the exit code. */
export const reportFailure = (err: unknown): number => {
  const error = err instanceof RxferError ? err : toRxferError(err);
  process.stderr.write(`rxfer: ERR ${error.code} ${error.message}\n`);
  return USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILED;
};
