import type { RxferClient } from '../client/index';
import { BEFORE_CONNECTING, EXIT_OK, noteInterrupted, onInterrupt, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';

/** What the work prints, and the exit status when some of it failed and was reported already (several names, one failing). */
export interface WorkOutcome {
  readonly output: string;
  readonly exit: number;
}

/**
 * One connection for one command: connect, do the work, QUIT, then print what the work returned.
 * Any failure closes the connection and becomes the `rxfer: ERR <CODE> …` line (with --json, one
 * JSON object) and exit status. `before` runs first, without a connection: local checks that make
 * a typo cost no connection.
 *
 * With `interrupted` (a command that writes files: put -r, get -r), SIGINT or SIGTERM closes the
 * connection instead of killing the process where it stands: the client library then fails every
 * request in flight and removes its staging files, the work ends, and the command says
 * `rxfer: interrupted (SIGINT), <interrupted()>` and exits 130 (143). `work` is told through its
 * AbortSignal. A second signal, of either kind, kills at once.
 */
export const withClient = async (
  flags: ConnectionFlags & { json?: boolean },
  work: (client: RxferClient, interruption: AbortSignal) => Promise<string | WorkOutcome>,
  before?: () => void,
  interrupted?: () => string,
): Promise<number> => {
  const { RxferClient } = require('../client/index') as typeof import('../client/index');
  let client: RxferClient | undefined;
  // Aborted with the signal that came (its reason).
  const interruption = new AbortController();
  const stopHandling = interrupted
    ? onInterrupt((signal) => {
        // Nothing written yet, nothing to clean up: said, and ended now.
        if (client === undefined) process.exit(noteInterrupted(signal, BEFORE_CONNECTING, flags.json === true));
        interruption.abort(signal);
        client.close();
      })
    : undefined;
  try {
    before?.();
    client = await RxferClient.connect(connectOptions(flags));
    const done = await work(client, interruption.signal);
    await client.quit().catch(() => client?.close());
    const { output, exit } = typeof done === 'string' ? { output: done, exit: EXIT_OK } : done;
    process.stdout.write(output);
    return exit;
  } catch (err) {
    client?.close();
    if (interruption.signal.aborted && interrupted) return noteInterrupted(interruption.signal.reason as NodeJS.Signals, interrupted(), flags.json === true);
    return reportFailure(err, { json: flags.json === true, tls: flags.tls === true || flags.ca !== undefined });
  } finally {
    stopHandling?.();
  }
};
