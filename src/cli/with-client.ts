import type { RxferClient } from '../client/index';
import { EXIT_OK, reportFailure } from './cli-failure';
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
 */
export const withClient = async (
  flags: ConnectionFlags & { json?: boolean },
  work: (client: RxferClient) => Promise<string | WorkOutcome>,
  before?: () => void,
): Promise<number> => {
  const { RxferClient } = require('../client/index') as typeof import('../client/index');
  let client: RxferClient | undefined;
  try {
    before?.();
    client = await RxferClient.connect(connectOptions(flags));
    const done = await work(client);
    await client.quit().catch(() => client?.close());
    const { output, exit } = typeof done === 'string' ? { output: done, exit: EXIT_OK } : done;
    process.stdout.write(output);
    return exit;
  } catch (err) {
    client?.close();
    return reportFailure(err, { json: flags.json === true, tls: flags.tls === true || flags.ca !== undefined });
  }
};
