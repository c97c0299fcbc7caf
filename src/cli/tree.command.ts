import { basename, posix, resolve } from 'node:path';
import type { RxferClient } from '../client/index';
import { printableName } from '../protocol/remote-name';
import { EXIT_OK, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';
import { formatBytes, formatRate, formatSeconds } from './format-units';

/**
 * `rxfer get -r REMOTE [DIR]`: the folder REMOTE into DIR/<basename of REMOTE> (or the current
 * folder's). Every name the server lists is checked before anything is written.
 */
export const runGetTree = async (remote: string, localDir: string | undefined, flags: ConnectionFlags): Promise<number> => {
  const { RxferClient, downloadTree } = require('../client/index') as typeof import('../client/index');
  const folder = remote.replace(/\/+$/, '');
  const target = posix.join(localDir ?? '.', folder === '' ? '.' : posix.basename(folder));
  let client: RxferClient | undefined;
  const startedAt = Date.now();
  try {
    client = await RxferClient.connect(connectOptions(flags));
    const result = await downloadTree(client, folder, target, (entry) => {
      if (!flags.quiet && process.stderr.isTTY) process.stderr.write(`  ${printableName(entry.name)}\n`);
    });
    await client.quit().catch(() => client?.close());
    const ms = Date.now() - startedAt;
    if (!flags.quiet) {
      process.stdout.write(
        `get -r ${printableName(folder || '/')} → ${printableName(target)}  ${result.files} files  ${formatBytes(result.bytes)}  ${formatSeconds(ms)} (${formatRate(result.bytes, ms)})\n`,
      );
    }
    return EXIT_OK;
  } catch (err) {
    client?.close();
    return reportFailure(err);
  }
};

/** `rxfer put -r DIR [REMOTE]`: the folder DIR as REMOTE (default: DIR's own name) on the server. */
export const runPutTree = async (localDir: string, remote: string | undefined, flags: ConnectionFlags): Promise<number> => {
  const { RxferClient, uploadTree } = require('../client/index') as typeof import('../client/index');
  const folder = (remote ?? basename(resolve(localDir))).replace(/\/+$/, '');
  let client: RxferClient | undefined;
  const startedAt = Date.now();
  try {
    client = await RxferClient.connect(connectOptions(flags));
    const result = await uploadTree(client, localDir, folder);
    await client.quit().catch(() => client?.close());
    const ms = Date.now() - startedAt;
    if (!flags.quiet) {
      process.stdout.write(
        `put -r ${printableName(localDir)} → ${printableName(folder || '/')}  ${result.files} files  ${formatBytes(result.bytes)}  ${formatSeconds(ms)} (${formatRate(result.bytes, ms)})\n`,
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
