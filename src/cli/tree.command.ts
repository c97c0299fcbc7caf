import { basename, posix, resolve } from 'node:path';
import type { RxferClient } from '../client/index';
import { printableName } from '../protocol/remote-name';
import { EXIT_OK, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';
import { formatBytes, formatRate, formatSeconds } from './format-units';

/**
 * `rxfer get -r REMOTE [DIR]`: the folder REMOTE into DIR/<its name> (every name the server lists is
 * checked before anything is written). `rxfer put -r DIR [REMOTE]`: the folder DIR as REMOTE (default:
 * DIR's own name). Both on one connection, small files pipelined.
 */
export const runTree = async (kind: 'put' | 'get', first: string, second: string | undefined, flags: ConnectionFlags): Promise<number> => {
  const { RxferClient, downloadTree, uploadTree } = require('../client/index') as typeof import('../client/index');
  const remote = (kind === 'get' ? first : (second ?? basename(resolve(first)))).replace(/\/+$/, '');
  const local = kind === 'get' ? posix.join(second ?? '.', remote === '' ? '.' : posix.basename(remote)) : first;
  let client: RxferClient | undefined;
  const startedAt = Date.now();
  try {
    client = await RxferClient.connect(connectOptions(flags));
    const result = kind === 'get' ? await downloadTree(client, remote, local) : await uploadTree(client, local, remote);
    await client.quit().catch(() => client?.close());
    const ms = Date.now() - startedAt;
    const [from, to] = kind === 'get' ? [remote || '/', local] : [local, remote || '/'];
    if (!flags.quiet) {
      process.stdout.write(
        `${kind} -r ${printableName(from)} → ${printableName(to)}  ${result.files} files  ${formatBytes(result.bytes)}  ${formatSeconds(ms)} (${formatRate(result.bytes, ms)})\n`,
      );
    }
    return EXIT_OK;
  } catch (err) {
    client?.close();
    return reportFailure(err);
  }
};

/** `rxfer ls [PREFIX] [--json]`: one line per file (size, sha256, modified, name), or JSON for scripts. */
export const runList = async (prefix: string | undefined, flags: ConnectionFlags & { json?: boolean }): Promise<number> => {
  const { RxferClient } = require('../client/index') as typeof import('../client/index');
  let client: RxferClient | undefined;
  try {
    client = await RxferClient.connect(connectOptions(flags));
    const entries = await client.list(prefix ?? '');
    await client.quit().catch(() => client?.close());
    if (flags.json) {
      process.stdout.write(JSON.stringify(entries) + '\n');
    } else {
      for (const entry of entries) {
        const when = new Date(entry.mtimeMs).toISOString().replace('T', ' ').slice(0, 19);
        process.stdout.write(`${formatBytes(entry.size).padStart(10)}  ${(entry.sha256 ?? '-').slice(0, 12).padEnd(12)}  ${when}  ${printableName(entry.name)}\n`);
      }
    }
    return EXIT_OK;
  } catch (err) {
    client?.close();
    return reportFailure(err);
  }
};
