import type { RxferClient } from '../client/index';
import { printableName } from '../protocol/remote-name';
import type { ConnectionFlags } from './connection-options';
import { formatBytes, formatTime } from './format-units';
import { withClient } from './with-client';

export type FileOpKind = 'stat' | 'rm' | 'mv' | 'mkdir';

/** Runs the operation; returns its JSON result and its human line. */
const operate = async (client: RxferClient, kind: FileOpKind, [first = '', second = '']: readonly string[]): Promise<[object, string]> => {
  switch (kind) {
    case 'stat': {
      const status = await client.stat(first);
      const size = status.type === 'file' ? `${formatBytes(status.size)}  ` : '';
      const digest = status.digest === undefined ? '' : `${client.hash} ${status.digest}`;
      const json = { name: first, ...status, ...(status.digest !== undefined && { hash: client.hash }) };
      return [json, `${printableName(first)}  ${status.type}  ${size}${digest}  ${formatTime(status.mtimeMs)}`];
    }
    case 'rm':
      await client.remove(first);
      return [{ ok: true }, `deleted ${printableName(first)}`];
    case 'mv':
      await client.rename(first, second);
      return [{ ok: true }, `renamed ${printableName(first)} → ${printableName(second)}`];
    case 'mkdir':
      await client.mkdir(first);
      return [{ ok: true }, `created ${printableName(first)}`];
  }
};

/** One connection, one operation; `--json` prints a machine-readable result on stdout. */
export const runFileOp = (kind: FileOpKind, names: readonly string[], flags: ConnectionFlags & { json?: boolean }): Promise<number> =>
  withClient(flags, async (client) => {
    const [result, line] = await operate(client, kind, names);
    if (flags.json) return JSON.stringify(result) + '\n';
    return flags.quiet ? '' : line.replace(/ +$/, '') + '\n';
  });
