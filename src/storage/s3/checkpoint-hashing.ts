import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { HashAlgorithm } from '../../integrity/hash-algorithm';

const WORKER_PATH = join(__dirname, 'checkpoint-hash.worker.js');

type Reply = { readonly id: number; readonly seq: number; readonly state?: Uint8Array; readonly error?: string };

/** One upload's running hash in a worker: each `update` resolves with the state after those bytes. */
export interface CheckpointHash {
  update(bytes: Buffer): Promise<Uint8Array>;
  close(): void;
}

/**
 * The hashing that lets another server resume an upload (a savable state after each part) runs in
 * worker threads: with hash-wasm's SHA-256 at ≈ 280 MiB/s on one core, on the main thread it would
 * cap all large uploads of a server together near that (the pipeline's own verification hash, Node's
 * at ≈ 1,100 MiB/s, stays where it is). Part buffers are SharedArrayBuffers, so a part goes to its
 * worker without a copy; the sink reuses a buffer only once both its upload and its hash are done.
 * Each upload sticks to one worker (its hasher lives there); uploads are spread round-robin.
 */
export class CheckpointHashing {
  private workers: Worker[] = [];
  private next = 0;
  private ids = 0;
  private readonly pending = new Map<string, { resolve: (state: Uint8Array) => void; reject: (err: Error) => void }>();

  constructor(private readonly threads = Math.max(1, Math.min(4, availableParallelism() - 1))) {}

  private pick(): Worker {
    if (this.workers.length < this.threads) {
      const worker = new Worker(WORKER_PATH);
      // Idle workers must not keep a stopping server alive; one with work is held by its promises.
      worker.unref();
      worker.on('message', (reply: Reply) => this.settle(reply));
      worker.on('error', (err) => this.failAll(err));
      this.workers.push(worker);
      return worker;
    }
    return this.workers[this.next++ % this.workers.length]!;
  }

  private settle({ id, seq, state, error }: Reply): void {
    const key = `${id}:${seq}`;
    const waiter = this.pending.get(key);
    this.pending.delete(key);
    if (error || !state) waiter?.reject(new Error(`checkpoint hash failed: ${error ?? 'no state'}`));
    else waiter?.resolve(state);
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
    this.workers = [];
  }

  /** A hash for one upload, starting fresh or from a saved `state`. */
  open(algorithm: HashAlgorithm, state?: Uint8Array): CheckpointHash {
    const worker = this.pick();
    const id = ++this.ids;
    let seq = 0;
    worker.postMessage({ op: 'start', id, algorithm, state });
    return {
      update: (bytes) => {
        const mine = ++seq;
        const done = new Promise<Uint8Array>((resolve, reject) => this.pending.set(`${id}:${mine}`, { resolve, reject }));
        // A shared buffer crosses without a copy; any other is copied by postMessage.
        worker.postMessage({ op: 'update', id, seq: mine, bytes: bytes.buffer, offset: bytes.byteOffset, length: bytes.length });
        return done;
      },
      close: () => worker.postMessage({ op: 'end', id }),
    };
  }

  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
