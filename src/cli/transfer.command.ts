import { createWriteStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { once } from 'node:events';
import type { ProgressListener, RxferClient, TransferResult } from '../client/index';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import { BEFORE_CONNECTING, EXIT_FAILED, EXIT_OK, noteInterrupted, onInterrupt, reportFailure } from './cli-failure';
import { connectOptions, type ConnectionFlags } from './connection-options';
import { type HashAlgorithm, hashLabel } from '../integrity/hash-algorithm';
import { formatBytes, formatRate, formatSeconds, shortDigest } from './format-units';
import { type GetTarget, planGetTarget } from './get-target';
import { createProgressDisplay } from './progress-display';
import type { RemoteStatus } from '../client/file-op.request';
import { finishWriting } from '../io/finish-writing';
import { joinRemote, namesRemoteFolder, remoteFolderOf, remoteStatusOf, remoteType, usage } from './remote-path';
import { type StdinFile, stdinAsFile } from './stdin-source';

export type TransferKind = 'put' | 'add' | 'get';

interface Plan {
  readonly localPath: string;
  readonly remoteName: string;
  /** `put a → b` reads left to right in the direction the bytes go. */
  readonly from: string;
  readonly to: string;
  /** get only: where the bytes go. */
  readonly target?: GetTarget;
  /**
   * put only: the STAT of `remoteName` the planner already made (null: nothing there), so that the
   * already-there check does not ask the server the same question again.
   */
  readonly remoteStatus?: RemoteStatus | null;
}

/** put/get flags beyond the connection: both default to on (`--no-resume`, `--no-skip-existing`). */
export interface TransferFlags extends ConnectionFlags {
  readonly resume?: boolean;
  readonly skipExisting?: boolean;
  readonly json?: boolean;
  /** put -T (false): the last argument is the remote file's name, even when it is also a local file. */
  readonly targetDirectory?: boolean;
  /** put -r -c: every local file is read to compare, the digest cache only written (digest-cache.ts). */
  readonly checksum?: boolean;
}

const localStats = (path: string) => {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
};

const folderWithoutR = (kind: TransferKind, name: string, rest: string): RxferError =>
  usage(`${printableName(name)} is a folder: add -r to copy a folder and everything in it (rxfer ${kind === 'add' ? 'put' : kind} -r ${printableName(name)}${rest})`);

/** get: one REMOTE into LOCAL, or several into the folder named last. Checked before anything is fetched. */
const planGets = (args: readonly string[]): Plan[] => {
  const several = args.length > 2;
  const remotes = several ? args.slice(0, -1) : args.slice(0, 1);
  const local = several ? args[args.length - 1]!.replace(/\/*$/, '/') : args[1];
  return remotes.map((remote) => {
    if (remote === '-') throw usage('"-" names standard output only as the local target: rxfer get REMOTE -');
    if (namesRemoteFolder(remote)) throw folderWithoutR('get', remote, local === undefined ? '' : ` ${local}`);
    const remoteName = remoteFolderOf(remote);
    const target = planGetTarget(remoteName, local);
    const to = target.kind === 'stdout' ? '(stdout)' : target.kind === 'file' ? (target.throughLink ?? target.path) : target.path;
    return { localPath: target.kind === 'stdout' ? '-' : target.path, remoteName, from: remoteName, to, target };
  });
};

/**
 * put/add: one LOCAL as REMOTE (default: its file name; into it when REMOTE is a folder, which a
 * trailing "/" says, created as needed), or several LOCALs into the remote folder named last.
 */
const planPuts = async (client: RxferClient, kind: TransferKind, args: readonly string[], flags: TransferFlags): Promise<Plan[]> => {
  const several = args.length > 2;
  const sources = args.length === 1 ? args : args.slice(0, -1);
  const last = args.length === 1 ? undefined : args[args.length - 1]!;
  for (const source of sources) {
    if (source === '-' && (last === undefined || several || namesRemoteFolder(last))) {
      throw usage(`standard input has no file name: name the remote file (rxfer ${kind} - NAME)`);
    }
    if (source !== '-' && localStats(source)?.isDirectory()) throw folderWithoutR(kind, source, last === undefined ? '' : ` ${last}`);
  }
  let intoFolder: string | undefined;
  let known: RemoteStatus | null | undefined;
  if (last === undefined) intoFolder = '';
  else if (namesRemoteFolder(last)) intoFolder = remoteFolderOf(last);
  else if (flags.targetDirectory !== false) {
    if (!several && sources[0] !== '-' && last !== sources[0] && localStats(last)?.isFile()) {
      throw usage(
        `${printableName(last)} is a local file too: to upload both, end with a folder on the server (rxfer ${kind} ${printableName(sources[0]!)} ${printableName(last)} FOLDER/); ` +
          `to store ${printableName(sources[0]!)} on the server as ${printableName(last)}, add -T`,
      );
    }
    const top = remoteFolderOf(last) === '';
    const status = top ? undefined : await remoteStatusOf(client, remoteFolderOf(last));
    const type = top ? 'folder' : status?.type;
    if (type === 'folder') intoFolder = remoteFolderOf(last);
    else if (several) throw usage(`several files go into a folder: ${printableName(last)} is ${type === 'file' ? 'a file' : 'not a folder'} on the server; end it with "/" to create it`);
    else known = status ?? null;
  }
  return sources.map((localPath) => {
    const remoteName = intoFolder === undefined ? remoteFolderOf(last!) : joinRemote(intoFolder, basename(localPath));
    return { localPath, remoteName, from: localPath === '-' ? '(stdin)' : localPath, to: remoteName, ...(intoFolder === undefined && known !== undefined && { remoteStatus: known }) };
  });
};

type Outcome = TransferResult & { readonly skipped?: boolean };

/**
 * put and get leave a file alone when the other side already has it, same size and digest: one
 * STAT round trip, and a local hash only when the sizes agree. Re-running an interrupted copy then
 * costs only what is missing (the same reason resume is on by default).
 */
const alreadyThere = async (client: RxferClient, plan: Plan, localPath: string): Promise<Outcome | undefined> => {
  const { isIdentical } = require('../client/identical') as typeof import('../client/identical');
  const remote = plan.remoteStatus !== undefined ? (plan.remoteStatus ?? undefined) : await remoteStatusOf(client, plan.remoteName);
  if (remote?.type !== 'file' || remote.digest === undefined || !(await isIdentical(localPath, remote, client.hash))) return undefined;
  return { size: remote.size, digest: remote.digest, skipped: true };
};

/** A stream target (stdout, a FIFO, a device) gets the bytes as they arrive; it is never renamed. */
const downloadToStream = async (client: RxferClient, plan: Plan, target: GetTarget, onProgress: ProgressListener): Promise<Outcome> => {
  if (target.kind === 'stdout') return client.downloadTo(plan.remoteName, process.stdout, { onProgress });
  const path = (target as { path: string }).path;
  const sink = createWriteStream(path, { flags: 'w' });
  // Its failures are read where they matter (the body's reader, then finishWriting), never thrown
  // as an unhandled 'error' between the two.
  sink.on('error', () => undefined);
  await once(sink, 'open').catch((err: unknown) => {
    const { localIoError } = require('../client/local-io') as typeof import('../client/local-io');
    throw localIoError(err, 'open for writing', path);
  });
  let result: Outcome;
  try {
    result = await client.downloadTo(plan.remoteName, sink, { onProgress });
  } catch (err) {
    sink.destroy();
    await once(sink, 'close').catch(() => undefined);
    throw err;
  }
  // The download ends once its last bytes are handed to the sink: a write that fails after that (a
  // full disk behind the FIFO, a device error) is this command's failure, not a success.
  await finishWriting(sink, path).catch((err: unknown) => {
    const { localIoError } = require('../client/local-io') as typeof import('../client/local-io');
    throw localIoError(err, 'write', path);
  });
  await once(sink, 'close').catch(() => undefined);
  return result;
};

const runOne = async (client: RxferClient, kind: TransferKind, plan: Plan, flags: TransferFlags, onProgress: ProgressListener, stdin?: StdinFile): Promise<Outcome> => {
  const target = plan.target;
  if (target && target.kind !== 'file') return downloadToStream(client, plan, target, onProgress);
  const localPath = plan.localPath === '-' ? stdin!.path : plan.localPath;
  // A get into a file that does not exist yet has nothing to compare: no round trip for it.
  const comparable = kind === 'put' || (kind === 'get' && localStats(localPath)?.isFile());
  if (comparable && flags.skipExisting !== false) {
    const skipped = await alreadyThere(client, plan, localPath);
    // Said "already there" only once its folder is synced (local-io.ts, syncFolderOf).
    if (skipped && kind === 'get') await (require('../client/local-io') as typeof import('../client/local-io')).syncFolderOf(localPath);
    if (skipped) return skipped;
  }
  const onResume = (offset: number, total: number) => {
    if (!flags.quiet) process.stderr.write(`rxfer: resumed at ${formatBytes(offset)} of ${formatBytes(total)} (the bytes already there were verified)\n`);
  };
  const resume = flags.resume !== false;
  if (kind === 'get') return client.download(plan.remoteName, localPath, { onProgress, resume, onResume });
  const mode = kind === 'add' ? 'create' : 'replace';
  return client.upload(localPath, plan.remoteName, { mode, onProgress, resume, onResume });
};

/** A get that failed because REMOTE is a folder says to add -r; anything else keeps its own words. */
const explainGetFailure = async (client: RxferClient, plan: Plan, err: unknown): Promise<unknown> => {
  if (!(err instanceof RxferError) || !['NOT_FOUND', 'NAME_CONFLICT', 'NAME_INVALID', 'STORAGE_FAILED'].includes(err.code) || client.isClosed) return err;
  const type = await remoteType(client, plan.remoteName).catch(() => undefined);
  return type === 'folder' ? folderWithoutR('get', plan.remoteName, '') : err;
};

const summary = (kind: TransferKind, plan: Plan, result: Outcome, ms: number, hash: HashAlgorithm): string => {
  const route = `${kind} ${printableName(plan.from)} → ${printableName(plan.to)}  ${formatBytes(result.size)}  ${hash} ${shortDigest(result.digest)}`;
  if (result.skipped) return `${route}  skipped: already there (same size and ${hashLabel(hash)})`;
  const resumed = result.resumedAt ? `  resumed at ${formatBytes(result.resumedAt)}` : '';
  return `${route}  ${formatSeconds(ms)} (${formatRate(result.size - (result.resumedAt ?? 0), ms)})${resumed}`;
};

const jsonResult = (kind: TransferKind, plan: Plan, result: Outcome, hash: HashAlgorithm): string =>
  JSON.stringify({ kind, from: plan.from, to: plan.to, size: result.size, hash, digest: result.digest, ...(result.skipped && { skipped: true }), ...(result.resumedAt && { resumedAt: result.resumedAt }) });

/**
 * The transfers on one connection, one after the other; one that fails does not stop the others
 * (as with cp), and the exit status is then 1. SIGINT (or SIGTERM) closes the connection: the client
 * library then fails the request and removes its staging file, and we exit with 130 (143).
 */
export const runTransfer = async (kind: TransferKind, args: readonly string[], flags: TransferFlags): Promise<number> => {
  const { RxferClient } = require('../client/index') as typeof import('../client/index');
  const context = { json: flags.json === true, tls: flags.tls === true || flags.ca !== undefined };
  const progress = createProgressDisplay(kind, flags.quiet === true);
  let client: RxferClient | undefined;
  let interrupted: NodeJS.Signals | undefined;
  let current: Plan | undefined;
  let stdin: StdinFile | undefined;
  const spooling = new AbortController();
  const stopHandling = onInterrupt((signal) => {
    interrupted = signal;
    progress.stop();
    spooling.abort();
    // Nothing to clean up before the connection exists: said, and ended now.
    if (client === undefined) process.exit(noteInterrupted(signal, BEFORE_CONNECTING, context.json));
    client.close();
  });
  let failed = false;
  try {
    // Local targets are checked before connecting: a typo costs no connection.
    const gets = kind === 'get' ? planGets(args) : undefined;
    client = await RxferClient.connect(connectOptions(flags));
    const plans = gets ?? (await planPuts(client, kind, args, flags));
    // Data on stdout: the summary goes to stderr, where it cannot mix with it.
    const report = plans.some((plan) => plan.target?.kind === 'stdout') ? process.stderr : process.stdout;
    if (plans.some((plan) => plan.localPath === '-') && kind !== 'get') stdin = await stdinAsFile(spooling.signal);
    for (const plan of plans) {
      current = plan;
      const startedAt = Date.now();
      const onProgress = (done: number, total: number) => progress.update(done, total);
      try {
        const result = await runOne(client, kind, plan, flags, onProgress, stdin).catch(async (err: unknown) => {
          // The kept upload changed between the server's proof and the upload (rare): start over once.
          if (!(err instanceof RxferError && err.code === 'RESUME_MISMATCH') || interrupted) throw err;
          if (!flags.quiet) process.stderr.write(`rxfer: ${err.message}; starting over\n`);
          client = await RxferClient.connect(connectOptions(flags));
          return runOne(client, kind, plan, { ...flags, resume: false, skipExisting: false }, onProgress, stdin);
        });
        progress.stop();
        if (flags.json) report.write(jsonResult(kind, plan, result, client.hash) + '\n');
        else if (!flags.quiet) report.write(summary(kind, plan, result, Date.now() - startedAt, client.hash) + '\n');
      } catch (err) {
        progress.stop();
        if (interrupted || plans.length === 1 || client.isClosed) throw kind === 'get' ? await explainGetFailure(client, plan, err) : err;
        reportFailure(kind === 'get' ? await explainGetFailure(client, plan, err) : err, context);
        failed = true;
      }
    }
    await client.quit().catch(() => client?.close());
    return failed ? EXIT_FAILED : EXIT_OK;
  } catch (err) {
    progress.stop();
    client?.close();
    // Interrupted before the first transfer began (while standard input was being spooled, say).
    if (interrupted && current === undefined) {
      return noteInterrupted(interrupted, `before any ${kind} began; nothing was transferred`, context.json);
    }
    if (interrupted && err instanceof RxferError && err.code === 'CONNECTION_LOST') {
      const kept = flags.resume !== false && kind !== 'add' ? '; run the same command again to resume' : '';
      return noteInterrupted(interrupted, `${kind} ${printableName(current?.from ?? '')} abandoned${kept}`, context.json);
    }
    return reportFailure(err, context);
  } finally {
    await stdin?.dispose();
    stopHandling();
  }
};
