import { EXIT_FAILED, EXIT_USAGE, explainFailure, formatFailure } from './explain-failure';

export const EXIT_OK = 0;
/** A transfer or server failure. */
export { EXIT_FAILED };
/** The command line (or the config it names) is wrong; retrying the same thing cannot work. */
export { EXIT_USAGE };
/** 128 + SIGINT, as shells report it. */
export const EXIT_INTERRUPTED = 130;
/** 128 + SIGTERM. */
export const EXIT_TERMINATED = 143;

/** The exit status of a command a signal stopped, as a shell reports one that the signal killed. */
const SIGNAL_EXIT_CODES: Readonly<Partial<Record<NodeJS.Signals, number>>> = { SIGINT: EXIT_INTERRUPTED, SIGTERM: EXIT_TERMINATED };

/**
 * Calls `first` on the first SIGINT or SIGTERM; the second, of either kind (even one that came in the
 * same instant), ends the process as that signal does by default (a shell sees it killed by it).
 * Returns the function that takes the handling away again: at once if no signal came, never once
 * one did. The process is then ending, and a second signal must still end it at once, even one
 * that came while the command finished its clean-up. Node hands a signal to the listeners of the
 * moment it dispatches it, not of the moment it came. If those were taken away meanwhile, the signal
 * is dropped and the process lives on (hostile pass y: SIGINT and SIGTERM sent together. The first
 * one's clean-up ended the command, and the second was lost: exit 143 instead of killed; CI, 2026-12-07).
 */
export const onInterrupt = (first: (signal: NodeJS.Signals) => void): (() => void) => {
  let seen = false;
  const handle = (signal: NodeJS.Signals) => {
    if (seen) {
      remove();
      process.kill(process.pid, signal);
      return;
    }
    seen = true;
    first(signal);
  };
  const remove = () => void process.removeListener('SIGINT', handle).removeListener('SIGTERM', handle);
  process.on('SIGINT', handle).on('SIGTERM', handle);
  return () => {
    if (!seen) remove();
  };
};

/** What a command stopped before its connection existed says (put, get, put -r, get -r alike). */
export const BEFORE_CONNECTING = 'before the connection was made; nothing was transferred';

/** Says on stderr that a signal stopped the command (with --json as one JSON object, as every failure) and gives its exit code. */
export const noteInterrupted = (signal: NodeJS.Signals, what: string, json: boolean): number => {
  const exit = SIGNAL_EXIT_CODES[signal] ?? EXIT_INTERRUPTED;
  const message = `interrupted (${signal}), ${what}`;
  process.stderr.write(json ? JSON.stringify({ code: 'INTERRUPTED', message, exit, signal }) + '\n' : `rxfer: ${message}\n`);
  return exit;
};

/** How the failing command was run: `--json` wants errors as JSON, `--tls` changes the hints. */
export interface FailureContext {
  readonly json?: boolean;
  readonly tls?: boolean;
}

/**
 * Prints `rxfer: ERR <CODE> <message>` on stderr (stable for scripts; with --json one JSON object
 * `{code, message, exit, detail}`) and returns the exit code.
 */
export const reportFailure = (err: unknown, context: FailureContext = {}): number => {
  const explained = explainFailure(err, context);
  process.stderr.write(formatFailure(explained, context.json === true));
  return explained.exit;
};

/** Whether this process was asked for JSON: for errors found before a command's flags are parsed. */
export const jsonRequested = (argv: readonly string[] = process.argv): boolean => argv.slice(2).includes('--json');
