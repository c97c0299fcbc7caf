import { CommanderError } from 'commander';
import { buildProgram } from './build-program';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, reportFailure } from './cli-failure';

/**
 * Entry point of `bin/rxfer.js`. Exit codes go through `process.exitCode` rather than
 * `process.exit()`, so that output still queued for a pipe is written before the process ends.
 */
const run = async (argv: readonly string[]): Promise<number> => {
  let exitCode = EXIT_OK;
  const program = buildProgram((code) => (exitCode = code));
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (err) {
    // --help and --version also arrive here, with exit code 0; anything else is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    return reportFailure(err) || EXIT_FAILED;
  }
};

// `rxfer --help | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

run(process.argv).then(
  (code) => (process.exitCode = code),
  (err: unknown) => (process.exitCode = reportFailure(err)),
);
