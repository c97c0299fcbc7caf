import { statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { RxferClient, TransferResult } from '../client/index';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';
import { formatBytes, formatRate, formatSeconds, shortDigest } from './format-units';
import { createProgressDisplay } from './progress-display';

export type TransferKind = 'put' | 'add' | 'get';

interface Plan {
  readonly localPath: string;
  readonly remoteName: string;
  /** `put a → b` reads left to right in the direction the bytes go. */
  readonly from: string;
  readonly to: string;
}

const isDirectory = (path: string): boolean => statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** Fills in the defaults: the local basename for uploads, the remote basename (in a folder) for get. */
export const planTransfer = (kind: TransferKind, first: string, second: string | undefined): Plan => {
  if (kind === 'get') {
    const remoteName = first;
    const fileName = posix.basename(remoteName);
    const localPath = second === undefined ? fileName : isDirectory(second) ? join(second, fileName) : second;
    return { localPath, remoteName, from: remoteName, to: localPath };
  }
  const localPath = first;
  // A REMOTE ending in "/" names a folder on the server: keep the local file name inside it.
  const remoteName = second === undefined ? basename(localPath) : second.endsWith('/') ? second + basename(localPath) : second;
  return { localPath, remoteName, from: localPath, to: remoteName };
};

const runOne = (client: RxferClient, kind: TransferKind, plan: Plan, onProgress: (done: number, total: number) => void) => {
  if (kind === 'get') return client.download(plan.remoteName, plan.localPath, { onProgress });
  const mode = kind === 'add' ? 'create' : 'replace';
  return client.upload(plan.localPath, plan.remoteName, { mode, onProgress });
};

const summary = (kind: TransferKind, plan: Plan, result: TransferResult, ms: number): string =>
  `${kind} ${printableName(plan.from)} → ${printableName(plan.to)}  ${formatBytes(result.size)}  ` +
  `sha256 ${shortDigest(result.sha256)}  ${formatSeconds(ms)} (${formatRate(result.size, ms)})`;

const SIGNAL_EXIT_CODES: Readonly<Partial<Record<NodeJS.Signals, number>>> = { SIGINT: EXIT_INTERRUPTED, SIGTERM: EXIT_TERMINATED };

/**
 * One transfer on its own connection. SIGINT (or SIGTERM) closes the connection: the client library
 * then fails the request and removes its staging file, and we exit with 130 (143) once that is done.
 */
export const runTransfer = async (
  kind: TransferKind,
  first: string,
  second: string | undefined,
  flags: ConnectionFlags,
): Promise<number> => {
  const { RxferClient } = require('../client/index') as typeof import('../client/index');
  const plan = planTransfer(kind, first, second);
  const progress = createProgressDisplay(kind, flags.quiet === true);
  let client: RxferClient | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onInterrupt = (signal: NodeJS.Signals) => {
    interrupted = signal;
    progress.stop();
    // Nothing to clean up before the connection exists.
    if (client === undefined) process.exit(SIGNAL_EXIT_CODES[signal]);
    client.close();
  };
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);
  const startedAt = Date.now();
  try {
    client = await RxferClient.connect(connectOptions(flags));
    const result = await runOne(client, kind, plan, (done, total) => progress.update(done, total));
    progress.stop();
    await client.quit().catch(() => client?.close());
    if (!flags.quiet) process.stdout.write(summary(kind, plan, result, Date.now() - startedAt) + '\n');
    return EXIT_OK;
  } catch (err) {
    progress.stop();
    client?.close();
    if (interrupted && err instanceof RxferError && err.code === 'CONNECTION_LOST') {
      process.stderr.write(`rxfer: interrupted (${interrupted}), ${kind} ${printableName(plan.from)} abandoned\n`);
      return SIGNAL_EXIT_CODES[interrupted] ?? EXIT_INTERRUPTED;
    }
    return reportFailure(err);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    process.removeListener('SIGTERM', onInterrupt);
  }
};
