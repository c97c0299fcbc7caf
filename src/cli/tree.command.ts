import { basename, posix, resolve } from 'node:path';
import { printableName } from '../protocol/remote-name';
import type { ConnectionFlags } from './connection-options';
import type { TransferFlags } from './transfer.command';
import { formatBytes, formatRate, formatSeconds, formatTime } from './format-units';
import { withClient } from './with-client';

/**
 * `rxfer get -r REMOTE [DIR]`: the folder REMOTE into DIR/<its name> (every name the server lists is
 * checked before anything is written). `rxfer put -r DIR [REMOTE]`: the folder DIR as REMOTE (default:
 * DIR's own name). Both on one connection, small files pipelined.
 */
export const runTree = (kind: 'put' | 'get', first: string, second: string | undefined, flags: TransferFlags): Promise<number> => {
  const { downloadTree, uploadTree } = require('../client/index') as typeof import('../client/index');
  const remote = (kind === 'get' ? first : (second ?? basename(resolve(first)))).replace(/\/+$/, '');
  const local = kind === 'get' ? posix.join(second ?? '.', remote === '' ? '.' : posix.basename(remote)) : first;
  const startedAt = Date.now();
  return withClient(flags, async (client) => {
    const options = { resume: flags.resume !== false, skipIdentical: flags.skipExisting !== false };
    const result = kind === 'get' ? await downloadTree(client, remote, local, options) : await uploadTree(client, local, remote, options);
    const ms = Date.now() - startedAt;
    const [from, to] = kind === 'get' ? [remote || '/', local] : [local, remote || '/'];
    if (flags.quiet) return '';
    const skipped = result.skipped > 0 ? `  (${result.skipped} already there, skipped)` : '';
    return `${kind} -r ${printableName(from)} → ${printableName(to)}  ${result.files} files  ${formatBytes(result.bytes)}  ${formatSeconds(ms)} (${formatRate(result.bytes, ms)})${skipped}\n`;
  });
};

/** `rxfer ls [PREFIX] [--json]`: one line per file (size, digest, modified, name), or JSON for scripts. */
export const runList = (prefix: string | undefined, flags: ConnectionFlags & { json?: boolean }): Promise<number> =>
  withClient(flags, async (client) => {
    const entries = await client.list(prefix ?? '');
    // Each digest names its algorithm (the connection's, --hash), so a script cannot compare the wrong kind.
    if (flags.json) return JSON.stringify(entries.map((entry) => (entry.digest === undefined ? entry : { ...entry, hash: client.hash }))) + '\n';
    return entries
      .map((entry) => `${formatBytes(entry.size).padStart(10)}  ${(entry.digest ?? '-').slice(0, 12).padEnd(12)}  ${formatTime(entry.mtimeMs)}  ${printableName(entry.name)}\n`)
      .join('');
  });
