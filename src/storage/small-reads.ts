import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { SMALL_FILE_BYTES } from './digest-index';
import { SmallFile, readSmallFile } from './read-small-file';
import type { SteadyVersion } from './digest-log';
import { READ_FLAGS } from './opened-paths';
import { outsideTheRoot, storageError } from './storage-errors';

/** Beside this file in src/ and in dist/ alike (see the worker's own comment). */
const WORKER_PATH = join(__dirname, 'small-read.worker.js');

/** An idle worker stops after this long, as the commit worker does (small-commits.ts). */
export const READ_IDLE_MS = 120_000;

/**
 * A batch the worker has not answered after this long is taken for stuck (a dead mount under one of
 * its files): its reads, and every read after them until it answers, go through the thread pool. Well
 * under the storage deadline (stallTimeoutMs, at least 500 ms), so that a read queued behind a stuck
 * one is still answered in time. A batch of 128 files from the page cache takes ≈ 1–2 ms; a slow disk
 * that takes longer only costs those files a second read.
 */
export const STUCK_AFTER_MS = 100;

/**
 * A worker that cannot start (its file missing from a broken install, no memory for a thread) is not
 * tried again and again, once per read: after this many, every read goes through the thread pool.
 */
const MAX_FAILED_STARTS = 3;

/**
 * The worker starts with a burst: this many small files read through the thread pool within
 * BURST_WINDOW_MS. One download now and then, or downloads of large files, never start a thread
 * (≈ 10 MiB and a few descriptors while it lives) for reads it would not batch.
 */
export const BURST_FILES = 32;
const BURST_WINDOW_MS = 1000;

/** How long close waits for the worker to end. */
const CLOSE_WAIT_MS = 1000;

/** Files per message: bounds what one batch holds (≤ 8 MiB) and how much a stuck batch delays. */
const BATCH_FILES = 128;

type Result =
  | { id: number; mtimeMs: number; steady: SteadyVersion | undefined; body: Uint8Array }
  | { id: number; large: true }
  | { id: number; notFile: true }
  | { id: number; outside: true }
  | { id: number; code: string; message: string };

interface Pending {
  readonly path: string;
  readonly name: RemoteName;
  readonly within: string;
  readonly resolve: (file: SmallFile | undefined) => void;
  readonly reject: (err: Error) => void;
  /** Sent through the thread pool as well (the worker was stuck or lost): the first answer counts. */
  hedged: boolean;
}

/**
 * Small files (≤ SMALL_FILE_BYTES) read whole for downloads, in batches, by one worker thread: a
 * burst of small downloads costs the main thread one message per batch instead of four thread-pool
 * round trips per file (open, fstat, read, close: readSmallFile).
 *
 * The worker starts with a burst of small reads (BURST_FILES), and reads never wait for it to start:
 * they go through the thread pool until it says it is ready. Nor do they wait long for a stuck one:
 * a batch unanswered after STUCK_AFTER_MS is sent through the thread pool as well, as is every read
 * after it until the worker answers again. A dead mount then ties up this thread and the pool threads
 * its reads reach, as it tied up pool threads before, and the storage deadline answers each request
 * that waits on it.
 */
export class SmallReads {
  private worker: Worker | undefined;
  private ready = false;
  /** The batch in the worker: one at a time, so that a stuck one is seen for what it is. */
  private inFlight: number[] | undefined;
  private stuckTimer: NodeJS.Timeout | undefined;
  private stuck = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, Pending>();
  private queue: number[] = [];
  private nextId = 0;
  private closed = false;
  /** Workers that ended before they were ready: after MAX_FAILED_STARTS, none is started again. */
  private failedStarts = 0;
  /** Small files read through the thread pool since `since`, while no worker runs (BURST_FILES). */
  private burst = { since: 0, count: 0 };

  /**
   * `path` (the storage name `name`) read whole; undefined for a larger file, which is streamed.
   * Refused (NAME_INVALID) if the open led outside `within` (assertOpenedWithin).
   */
  read(path: string, name: RemoteName, within: string): Promise<SmallFile | undefined> {
    if (this.closed || this.failedStarts >= MAX_FAILED_STARTS) return readSmallFile(path, name, within);
    const worker = this.worker;
    if (!worker) return readSmallFile(path, name, within).then((file) => this.countedTowardsBurst(file));
    clearTimeout(this.idleTimer);
    if (!this.ready || this.stuck) return readSmallFile(path, name, within);
    worker.ref();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { path, name, within, resolve, reject, hedged: false });
      this.queue.push(id);
      if (this.inFlight === undefined && this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  /** `file` (what the thread pool read), counted towards the burst that starts the worker. */
  private countedTowardsBurst(file: SmallFile | undefined): SmallFile | undefined {
    if (file === undefined || this.worker || this.closed) return file;
    const now = Date.now();
    if (now - this.burst.since > BURST_WINDOW_MS) this.burst = { since: now, count: 0 };
    if (++this.burst.count >= BURST_FILES && this.failedStarts < MAX_FAILED_STARTS) this.worker = this.start();
    return file;
  }

  /**
   * Starts the worker if it is not running; resolves once it takes reads (false if it could not start).
   * For tests and warm-up: `read` never waits for it.
   */
  whenReady(): Promise<boolean> {
    if (this.closed || this.failedStarts >= MAX_FAILED_STARTS) return Promise.resolve(false);
    const worker = (this.worker ??= this.start());
    if (this.ready) return Promise.resolve(true);
    // Waited for, it keeps the process alive meanwhile (a started worker does not by itself).
    worker.ref();
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        worker.off('message', onMessage).off('exit', onExit);
        this.idleWhenDone();
        resolve(ok);
      };
      const onMessage = (message: unknown) => message === 'ready' && done(true);
      const onExit = () => done(false);
      worker.on('message', onMessage).once('exit', onExit);
    });
  }

  /** Ends the worker (the server is stopping); reads still waiting on it go through the thread pool. */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.stuckTimer);
    this.hedge([...this.pending.keys()]);
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return Promise.resolve();
    // Waited for, but not for ever: a worker stuck in a read the kernel never completes never ends.
    return Promise.race([worker.terminate().then(() => undefined), new Promise<void>((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
  }

  private flush(): void {
    if (this.inFlight !== undefined || this.queue.length === 0 || !this.worker) return;
    const ids = this.queue.splice(0, BATCH_FILES);
    this.inFlight = ids;
    const jobs = ids.map((id) => {
      const { path, within } = this.pending.get(id)!;
      return { id, path, within, limit: SMALL_FILE_BYTES, flags: READ_FLAGS };
    });
    this.worker.postMessage(jobs);
    this.stuckTimer = setTimeout(() => {
      // Its reads and those queued behind it go through the thread pool; so do later ones until it answers.
      this.stuck = true;
      this.hedge([...this.inFlight!, ...this.queue.splice(0)]);
    }, STUCK_AFTER_MS);
  }

  /** Sends each read (not yet answered, not yet hedged) through the thread pool; the first answer counts. */
  private hedge(ids: readonly number[]): void {
    for (const id of ids) {
      const waiting = this.pending.get(id);
      if (!waiting || waiting.hedged) continue;
      waiting.hedged = true;
      readSmallFile(waiting.path, waiting.name, waiting.within).then(
        (file) => this.settle(id, (w) => w.resolve(file)),
        (err: Error) => this.settle(id, (w) => w.reject(err)),
      );
    }
    this.idleWhenDone();
  }

  private settle(id: number, answer: (waiting: Pending) => void): void {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    answer(waiting);
    this.idleWhenDone();
  }

  private answered(results: Result[]): void {
    clearTimeout(this.stuckTimer);
    this.inFlight = undefined;
    this.stuck = false;
    for (const result of results) {
      this.settle(result.id, (waiting) => {
        if ('body' in result) waiting.resolve({ body: Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength), mtimeMs: result.mtimeMs, steady: result.steady });
        else if ('large' in result) waiting.resolve(undefined);
        else if ('notFile' in result) waiting.reject(new RxferError('NAME_CONFLICT', `${waiting.name} is a folder, not a file`));
        else if ('outside' in result) waiting.reject(outsideTheRoot(waiting.name));
        else waiting.reject(storageError(Object.assign(new Error(result.message), { code: result.code }), 'read', waiting.name));
      });
    }
    this.flush();
  }

  /**
   * Once no read waits on the worker it no longer keeps the process alive (a stuck batch whose reads
   * were answered through the thread pool neither), and once it holds no batch it stops after READ_IDLE_MS.
   */
  private idleWhenDone(): void {
    const worker = this.worker;
    if (!worker || this.pending.size > 0) return;
    worker.unref();
    if (this.inFlight !== undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(worker), READ_IDLE_MS).unref();
  }

  private stop(worker: Worker): void {
    if (this.worker !== worker || this.pending.size > 0 || this.inFlight !== undefined) return;
    this.worker = undefined;
    this.ready = false;
    void worker.terminate();
  }

  private start(): Worker {
    // A small heap: it holds a batch's job descriptions; the bodies are ArrayBuffers, off-heap.
    const worker = new Worker(WORKER_PATH, { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    worker.unref();
    worker.on('message', (message: 'ready' | Result[]) => {
      if (this.worker !== worker) return;
      if (message === 'ready') {
        this.ready = true;
        this.idleWhenDone();
      } else {
        this.answered(message);
      }
    });
    // The thread died (out of memory, say): what it held goes through the thread pool, the next read starts a new one.
    const lost = () => {
      if (this.worker !== worker) return;
      if (!this.ready) this.failedStarts++;
      this.worker = undefined;
      this.ready = false;
      clearTimeout(this.stuckTimer);
      this.stuck = false;
      const held = [...(this.inFlight ?? []), ...this.queue.splice(0)];
      this.inFlight = undefined;
      this.hedge(held);
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    return worker;
  }
}
