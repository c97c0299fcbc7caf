import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { HashAlgorithm } from '../integrity/hash-algorithm';
import { folderOf } from './digest-log';
import { digestLogPath } from './small-commit-log';
import { lookInOpenedFolder } from './opened-paths';

/** Beside this file in src/ and in dist/ alike (see the worker's own comment). */
const WORKER_PATH = join(__dirname, 'small-commit.worker.js');

export interface SmallCommitJob {
  /**
   * Exactly the file's bytes. Copied to the worker (at most 64 KiB, a few µs), not transferred: the
   * caller keeps them to try again if the folder vanished meanwhile.
   */
  readonly data: Uint8Array;
  /** Created by the worker (`wx`) in the staging folder, on the root's file system, so that the rename is atomic. */
  readonly staging: string;
  readonly target: string;
  readonly folder: string;
  readonly createOnly: boolean;
  readonly measureReplaced: boolean;
  /** The storage name and its verified digest, for the folder's digest log (small-commit-log.js). */
  readonly name?: string;
  readonly hash?: HashAlgorithm;
  readonly digest?: string;
}

/** What the worker gets: the job, with where its digest goes instead of the name it derives from. */
type WorkerJob = Omit<SmallCommitJob, 'name' | 'hash' | 'digest'> & { id: number; sum?: { log: string; hash: string; digest: string } };

export interface SmallCommitResult {
  readonly mtimeMs: number;
  readonly replacedBytes: number;
}

/** A commit waiting for its reply: how to answer it, and what to look for if the worker is lost. */
interface Pending {
  readonly resolve: (r: SmallCommitResult) => void;
  readonly reject: (e: Error) => void;
  readonly target: string;
  readonly data: Uint8Array;
  /** When it was asked for (Date.now()): a file in place older than this is not its work. */
  readonly since: number;
  /**
   * A create-only commit (ADDFILE) whose name was taken when it was asked for: its link can only fail,
   * so what is there is never its work (even the same bytes, stored a moment before by another upload:
   * hostile pass h). Looked at then, under the name's lock that the caller holds.
   */
  readonly taken: boolean;
}

/** File times come from a coarse clock that may lag Date.now() by a few ms; a second of slack. */
const MTIME_SLACK_MS = 1000;

/**
 * After the worker was lost: whether `target` holds this commit's bytes, written since it was asked
 * for, i.e. the worker renamed (or linked) it into place before it died. Read synchronously: it runs
 * once per commit a lost worker held, at most a batch of files of at most 64 KiB.
 */
export const inPlace = ({ target, data, since }: Pick<Pending, 'target' | 'data' | 'since'>): number | undefined => {
  try {
    const stats = lstatSync(target);
    // Only a regular file is read: a FIFO under the name would block this thread (an empty upload's size is its size).
    const candidate = stats.isFile() && stats.size === data.length && stats.mtimeMs >= since - MTIME_SLACK_MS;
    if (candidate && Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(readFileSync(target))) return stats.mtimeMs;
  } catch {
    // Gone, or unreadable: not shown to be in place.
  }
  return undefined;
};

type Reply =
  | { id: number; mtimeMs: number; replacedBytes: number; code?: undefined }
  | { id: number; code: string; message: string; linkOnTheWay?: true; serverFolder?: string; published?: boolean; mtimeMs?: number; replacedBytes?: number };

/**
 * A commit that failed after its file was renamed into place (its folder fsync failed): the error
 * carries what a successful one returns, so that the caller reports the file as there.
 */
export interface PublishedFailure extends Error {
  readonly code: string;
  readonly published: SmallCommitResult;
}

export const isPublishedFailure = (err: unknown): err is PublishedFailure => typeof (err as PublishedFailure | undefined)?.published === 'object';

/**
 * One message of the worker: the replies of a batch, and how many digest-log compactions it then
 * started or finished (it compacts after replying: small-commit.worker.js).
 */
type WorkerMessage = { replies: Reply[]; compactionsStarted: number; compactionsFinished: number; compacted?: string };

/**
 * Group commit of small files: write, fsync, close and rename each staging file, then fsync each
 * folder once per batch, all in one worker thread (see small-commit.worker.js for why). Commits
 * requested in the same turn of the event loop go as one message, and those that arrive while the
 * worker is busy queue up into its next batch, so a burst of small uploads costs the main thread
 * one message per batch instead of seven threadpool round trips per file (open, write, fsync,
 * fstat, close, rename, and a share of the folder fsync).
 * The worker starts with the first commit and keeps the process alive only while commits are pending;
 * after IDLE_MS without one it stops, giving its ≈ 10 MiB back (a server moving big files keeps its
 * memory flat), and the next small upload starts it again (≈ 60 ms of CPU, once per burst: issue 20).
 */
/** An idle worker stops after this long: 2 min, so that commands typed a minute apart find it warm. */
export const IDLE_MS = 120_000;

export class SmallCommits {
  private worker: Worker | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, Pending>();
  private queue: WorkerJob[] = [];
  private readonly logs = new Map<string, string>();
  private nextId = 0;
  /** Create-only commits looking at their name before they queue (commit). */
  private readonly looking = new Set<Promise<unknown>>();
  /** Compactions the worker is running: it is not stopped (idle or closing) in the middle of one. */
  private compacting = 0;
  /** Logs whose compaction was asked for (compactLog) and is not done yet: asked once. */
  private readonly compactionsAsked = new Set<string>();

  /**
   * `sumsFolder`: where the folders' digest logs are (undefined: keep none). `faults`: folders whose
   * fsync the worker reports as failed with EIO after its renames into them (tests only: the worker's
   * own `fs` cannot be reached from outside its thread, and no local file system fails a folder fsync
   * on command).
   */
  constructor(
    private readonly sumsFolder?: string,
    private readonly faults: { readonly failFolderFsyncs?: readonly string[] } = {},
  ) {}

  async commit({ name, hash, digest, ...job }: SmallCommitJob): Promise<SmallCommitResult> {
    const sum = name !== undefined && hash && digest ? this.sumFor(name, hash, digest) : undefined;
    // In the checked folder, opened: by path, a folder swapped for a link would have this look outside
    // the root. Through the thread pool: a user's folder on a mount that stops answering must hold this
    // commit only, never the main thread (hostile pass p). Counted, so that close() waits for it.
    const taken = job.createOnly ? await this.arriving(lookInOpenedFolder(job.folder, job.target).then((found) => found !== undefined)) : false;
    return new Promise((resolve, reject) => {
      clearTimeout(this.idleTimer);
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject, target: job.target, data: job.data, since: Date.now(), taken });
      this.queue.push({ ...job, id, ...(sum && { sum }) });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /**
   * Compacts the digest log `log` of the real folder `folder`, which the main thread grew past
   * COMPACT_FROM_BYTES (digests of files hashed on demand, DigestIndex.remember): in the worker, as
   * its own appends are, so that a folder that only ever has files put there by other means and
   * downloaded does not grow its log without end. `size`: the log's size as the asker saw it.
   */
  compactLog(log: string, folder: string, size: number): void {
    if (this.compactionsAsked.has(log)) return;
    // Started first: a worker that cannot start leaves nothing counted that no reply would end.
    const worker = (this.worker ??= this.start());
    this.compactionsAsked.add(log);
    clearTimeout(this.idleTimer);
    this.compacting += 1;
    worker.ref();
    worker.postMessage({ compact: { log, folder, size } });
  }

  /** `look`, counted among the commits on their way to the queue (close() waits for them). */
  private async arriving<T>(look: Promise<T>): Promise<T> {
    this.looking.add(look);
    try {
      return await look;
    } finally {
      this.looking.delete(look);
    }
  }

  /** Where a file's digest goes; the log of a folder is looked up once per burst (a hash of its name). */
  private sumFor(name: string, hash: string, digest: string): { log: string; hash: string; digest: string } | undefined {
    if (this.sumsFolder === undefined) return undefined;
    const folder = folderOf(name);
    let log = this.logs.get(folder);
    if (log === undefined) {
      if (this.logs.size >= 1024) this.logs.clear();
      log = digestLogPath(this.sumsFolder, folder);
      this.logs.set(folder, log);
    }
    return { log, hash, digest };
  }

  private flush(): void {
    const jobs = this.queue;
    this.queue = [];
    const worker = (this.worker ??= this.start());
    worker.ref();
    worker.postMessage(jobs);
  }

  /** Ends the worker once the commits in progress are done (the server is stopping). */
  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    // Commits still looking at their name queue once the look is done: wait for them to be queued.
    while (this.looking.size > 0) await Promise.allSettled([...this.looking]);
    // Commits made this turn reach the worker on the next (flush, scheduled before this): without
    // waiting for it, close would find no worker yet and return with them still to be done.
    if (this.queue.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const worker = this.worker;
    if (!worker) return;
    if (this.pending.size > 0 || this.compacting > 0) {
      // Every message is looked at, not only the first: a burst may be answered in several batches,
      // and a compaction cut short would leave its temporary file behind.
      await new Promise<void>((resolve) => {
        const done = () => {
          worker.off('message', onReply).off('exit', done);
          resolve();
        };
        const onReply = () => this.pending.size === 0 && this.compacting === 0 && done();
        worker.on('message', onReply).once('exit', done);
      });
    }
    this.worker = undefined;
    await worker.terminate();
  }

  /** Ends an idle worker; forgotten first, so that a commit arriving now starts a new one. */
  private stop(worker: Worker): void {
    if (this.worker !== worker || this.pending.size > 0 || this.queue.length > 0 || this.compacting > 0) return;
    this.worker = undefined;
    void worker.terminate();
  }

  private start(): Worker {
    // Small heaps: it holds a few batches of job descriptions (the data is in ArrayBuffers, off-heap),
    // and, while it compacts a folder's digest log, that log's records (up to its 16 MiB cap: ≈ 35 MB,
    // small-commit.worker.js; with 32 MB a folder of 67,000 files killed it: issue 17). A cap, not a
    // reservation: the thread costs ≈ 10 MiB of RSS otherwise; it starts with the first small upload.
    const resourceLimits = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 };
    const worker = new Worker(WORKER_PATH, { resourceLimits, workerData: { failFolderFsyncs: this.faults.failFolderFsyncs ?? [] } });
    worker.on('message', ({ replies, compactionsStarted, compactionsFinished, compacted }: WorkerMessage) => {
      this.compacting += compactionsStarted - compactionsFinished;
      if (compacted !== undefined) this.compactionsAsked.delete(compacted);
      for (const reply of replies) {
        const waiting = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (reply.code === undefined) waiting?.resolve(reply);
        else waiting?.reject(Object.assign(new Error(reply.message), { code: reply.code, linkOnTheWay: reply.linkOnTheWay, serverFolder: reply.serverFolder }, reply.published && { published: { mtimeMs: reply.mtimeMs ?? 0, replacedBytes: reply.replacedBytes ?? 0 } }));
      }
      if (this.pending.size === 0 && this.queue.length === 0 && this.compacting === 0) {
        worker.unref();
        this.idleTimer = setTimeout(() => this.stop(worker), IDLE_MS).unref();
      }
    });
    // The worker catches every fs error itself; this is for the thread dying (out of memory, say):
    // its pending files fail (a staging file it was writing may be left behind), the next starts anew.
    // A file it had already put in place fails as `published` (NOT_DURABLE: stored, its folder fsync
    // unknown), never as "not stored": the batch's replies come only after its renames.
    const lost = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.compacting = 0;
      this.compactionsAsked.clear();
      for (const [id, waiting] of this.pending) {
        if (this.queue.some((job) => job.id === id)) continue;
        this.pending.delete(id);
        const mtimeMs = waiting.taken ? undefined : inPlace(waiting);
        const failure = Object.assign(new Error(`commit worker stopped: ${err.message}`), { code: 'EWORKER' });
        waiting.reject(mtimeMs === undefined ? failure : Object.assign(failure, { published: { mtimeMs, replacedBytes: 0 } }));
      }
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
    return worker;
  }
}
