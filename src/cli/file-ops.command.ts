import type { RxferClient } from '../client/index';
import { printableName } from '../protocol/remote-name';
import { EXIT_OK, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';
import { formatBytes } from './format-units';

export type FileOpKind = 'stat' | 'rm' | 'mv' | 'mkdir';

/** One connection, one operation; `--json` prints a machine-readable result on stdout. */
export const runFileOp = async (kind: FileOpKind, names: readonly string[], flags: ConnectionFlags & { json?: boolean }): Promise<number> => {
  const { RxferClient } = require('../client/index') as typeof import('../client/index');
  let client: RxferClient | undefined;
  try {
    client = await RxferClient.connect(connectOptions(flags));
    const [first = '', second = ''] = names;
    let result: object = { ok: true };
    let line = '';
    if (kind === 'stat') {
      const status = await client.stat(first);
      result = { name: first, ...status };
      const when = new Date(status.mtimeMs).toISOString().replace('T', ' ').slice(0, 19);
      line = `${printableName(first)}  ${status.type}  ${status.type === 'file' ? formatBytes(status.size) + '  ' : ''}${status.sha256 ?? ''}  ${when}`;
    } else if (kind === 'rm') {
      await client.remove(first);
      line = `deleted ${printableName(first)}`;
    } else if (kind === 'mv') {
      await client.rename(first, second);
      line = `renamed ${printableName(first)} → ${printableName(second)}`;
    } else {
      await client.mkdir(first);
      line = `created ${printableName(first)}`;
    }
    await client.quit().catch(() => client?.close());
    if (flags.json) process.stdout.write(JSON.stringify(result) + '\n');
    else if (!flags.quiet) process.stdout.write(line.replace(/ +$/, '') + '\n');
    return EXIT_OK;
  } catch (err) {
    client?.close();
    return reportFailure(err);
  }
};
