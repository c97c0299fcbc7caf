import { statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { ProgressListener, RxferClient, TransferResult } from '../client/index';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';
import { type HashAlgorithm, hashLabel } from '../integrity/hash-algorithm';
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

/** put/get flags beyond the connection: both default to on (`--no-resume`, `--no-skip-existing`). */
export interface TransferFlags extends ConnectionFlags {
  readonly resume?: boolean;
  readonly skipExisting?: boolean;
}

type Outcome = TransferResult & { readonly skipped?: boolean };

/**
 * put and get leave a file alone when the other side already has it, same size and digest: one
 * STAT round trip, and a local hash only when the sizes agree. Re-running an interrupted copy then
 * costs only what is missing (the same reason resume is on by default).
 */
const alreadyThere = async (client: RxferClient, plan: Plan): Promise<Outcome | undefined> => {
  const { isIdentical } = require('../client/identical') as typeof import('../client/identical');
  const remote = await client.stat(plan.remoteName).catch((err: unknown) => {
    if (err instanceof RxferError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  });
  if (remote?.type !== 'file' || remote.digest === undefined || !(await isIdentical(plan.localPath, remote, client.hash))) return undefined;
  return { size: remote.size, digest: remote.digest, skipped: true };
};

const runOne = async (client: RxferClient, kind: TransferKind, plan: Plan, flags: TransferFlags, onProgress: ProgressListener): Promise<Outcome> => {
  // A get into a file that does not exist yet has nothing to compare: no round trip for it.
  const comparable = kind === 'put' || (kind === 'get' && statSync(plan.localPath, { throwIfNoEntry: false })?.isFile());
  if (comparable && flags.skipExisting !== false) {
    const skipped = await alreadyThere(client, plan);
    if (skipped) return skipped;
  }
  const onResume = (offset: number, total: number) => {
    if (!flags.quiet) process.stderr.write(`rxfer: resumed at ${formatBytes(offset)} of ${formatBytes(total)} (the bytes already there were verified)\n`);
  };
  const resume = flags.resume !== false;
  if (kind === 'get') return client.download(plan.remoteName, plan.localPath, { onProgress, resume, onResume });
  const mode = kind === 'add' ? 'create' : 'replace';
  return client.upload(plan.localPath, plan.remoteName, { mode, onProgress, resume, onResume });
};

const summary = (kind: TransferKind, plan: Plan, result: Outcome, ms: number, hash: HashAlgorithm): string => {
  const route = `${kind} ${printableName(plan.from)} → ${printableName(plan.to)}  ${formatBytes(result.size)}  ${hash} ${shortDigest(result.digest)}`;
  if (result.skipped) return `${route}  skipped: already there (same size and ${hashLabel(hash)})`;
  const resumed = result.resumedAt ? `  resumed at ${formatBytes(result.resumedAt)}` : '';
  return `${route}  ${formatSeconds(ms)} (${formatRate(result.size - (result.resumedAt ?? 0), ms)})${resumed}`;
};

const SIGNAL_EXIT_CODES: Readonly<Partial<Record<NodeJS.Signals, number>>> = { SIGINT: EXIT_INTERRUPTED, SIGTERM: EXIT_TERMINATED };

/**
 * One transfer on its own connection. SIGINT (or SIGTERM) closes the connection: the client library
 * then fails the request and removes its staging file, and we exit with 130 (143) once that is done.
 */
export const runTransfer = async (
  kind: TransferKind,
  first: string,
  second: string | undefined,
  flags: TransferFlags,
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
    const onProgress = (done: number, total: number) => progress.update(done, total);
    const result = await runOne(client, kind, plan, flags, onProgress).catch(async (err: unknown) => {
      // The kept upload changed between the server's proof and the upload (rare): start over once.
      if (!(err instanceof RxferError && err.code === 'RESUME_MISMATCH') || interrupted) throw err;
      if (!flags.quiet) process.stderr.write(`rxfer: ${err.message}; starting over\n`);
      client = await RxferClient.connect(connectOptions(flags));
      return runOne(client, kind, plan, { ...flags, resume: false, skipExisting: false }, onProgress);
    });
    progress.stop();
    await client.quit().catch(() => client?.close());
    if (!flags.quiet) process.stdout.write(summary(kind, plan, result, Date.now() - startedAt, client.hash) + '\n');
    return EXIT_OK;
  } catch (err) {
    progress.stop();
    client?.close();
    if (interrupted && err instanceof RxferError && err.code === 'CONNECTION_LOST') {
      const kept = flags.resume !== false && kind !== 'add' ? '; run the same command again to resume' : '';
      process.stderr.write(`rxfer: interrupted (${interrupted}), ${kind} ${printableName(plan.from)} abandoned${kept}\n`);
      return SIGNAL_EXIT_CODES[interrupted] ?? EXIT_INTERRUPTED;
    }
    return reportFailure(err);
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    process.removeListener('SIGTERM', onInterrupt);
  }
};
