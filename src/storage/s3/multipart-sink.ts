import { Writable } from 'node:stream';
import { S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { PartBudget } from './part-budget';
import { Checkpoint, PartLedger, UploadedPart } from './part-ledger';
import type { CheckpointHash } from './checkpoint-hashing';

/** S3's smallest part other than the last. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;

export interface MultipartTarget {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly uploadId: string;
}

/**
 * A Writable that sends what it is given as the parts of a multipart upload, at most `partsInFlight`
 * buffers of `partBytes` at once (the one being filled included). A write completes once its bytes
 * are copied into a part buffer; when all buffers are taken it completes only when a part is
 * accepted, so the pipeline's write window fills and FlowControl holds the socket: the file never
 * piles up in memory. Bytes are copied (not kept as views), so the socket's read buffers go at once.
 *
 * With `hash`, each part is hashed (in a worker) and the state after it saved, so the bucket can
 * record, for the parts accepted so far, a state another process can continue.
 */
export class MultipartSink extends Writable {
  private buffer: Buffer | undefined;
  private filled = 0;
  private readonly ledger: PartLedger;
  private uploading = 0;
  private waiting: (() => void)[] = [];
  private kept = false;
  private failure: Error | undefined;
  private written: number;
  /** Cuts the parts still being sent when the upload is dropped (no point sending them on). */
  private readonly inFlight = new AbortController();

  constructor(
    private readonly target: MultipartTarget,
    private readonly partBytes: number,
    private readonly partsInFlight: number,
    private readonly budget: PartBudget,
    private readonly hash: CheckpointHash | undefined,
    /** Parts already there (a resumed upload) and their total size. */
    earlier: Checkpoint,
    /** Called whenever the accepted prefix grows (in order; each call supersedes the last). */
    private readonly onProgress: (checkpoint: Checkpoint) => void,
    /** Turns a failed part into the error the upload reports (a storage code, the file's name). */
    private readonly describe: (err: unknown) => Error,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.ledger = new PartLedger(earlier);
    this.written = earlier.bytes;
  }

  /** Bytes handed to this sink so far, the earlier parts included. */
  get position(): number {
    return this.written;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    void this.take(chunk).then(() => done(), (err: Error) => done(err));
  }

  private async take(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.failure) throw this.failure;
      if (!this.buffer) await this.newBuffer();
      const piece = chunk.subarray(at, at + Math.min(chunk.length - at, this.buffer!.length - this.filled));
      piece.copy(this.buffer!, this.filled);
      this.filled += piece.length;
      this.written += piece.length;
      at += piece.length;
      if (this.filled === this.buffer!.length) this.seal();
    }
  }

  /** Waits for a free buffer (fewer than partsInFlight taken) and for the process's budget. */
  private async newBuffer(): Promise<void> {
    while (this.uploading >= this.partsInFlight && !this.failure && !this.kept) await this.partDone();
    if (this.failure) throw this.failure;
    if (this.kept) throw new Error('the upload was suspended');
    const buffer = await this.budget.acquire(this.partBytes);
    if (this.kept) {
      this.budget.release(buffer);
      throw new Error('the upload was suspended');
    }
    this.buffer = buffer;
    this.filled = 0;
  }

  /** The buffer so far becomes the next part and goes out. */
  private seal(): void {
    const buffer = this.buffer!;
    const body = buffer.subarray(0, this.filled);
    this.buffer = undefined;
    const part = this.ledger.cut(this.written);
    this.uploading++;
    const { s3, bucket, key, uploadId } = this.target;
    // The buffer is busy (and counts as in flight) until S3 accepted it and its hash state is saved.
    const hashed = this.hash?.update(body);
    const sent = s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: part.n, Body: body, ContentLength: body.length }), {
      abortSignal: this.inFlight.signal,
    });
    Promise.all([sent, hashed])
      .then(
        ([result, state]) => {
          part.accepted(body.length, result.ETag ?? '', state);
          this.onProgress(this.ledger.checkpoint());
        },
        (err: unknown) => {
          this.failure ??= this.describe(err);
        },
      )
      .finally(() => {
        this.uploading--;
        this.budget.release(buffer);
        for (const wake of this.waiting.splice(0)) wake();
      });
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.inFlight.abort();
    done(err);
  }

  /** Every part sent, the last (any size) included. */
  override _final(done: (err?: Error | null) => void): void {
    if (this.buffer && this.filled > 0) this.seal();
    else if (this.buffer) this.dropBuffer();
    void this.drained().then(() => done(this.failure), done);
  }

  private dropBuffer(): void {
    if (!this.buffer) return;
    this.budget.release(this.buffer);
    this.buffer = undefined;
  }

  private async drained(): Promise<void> {
    while (this.uploading > 0) await this.partDone();
  }

  private partDone(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** All parts in order, once the sink finished (commit). */
  get parts(): UploadedPart[] {
    return this.ledger.parts;
  }

  /**
   * The connection was lost: the parts in flight finish, a filled buffer big enough to be a part is
   * sent as one (a part may be any size from 5 MiB), the rest is dropped. Returns what is kept.
   */
  async keep(): Promise<Checkpoint> {
    this.kept = true;
    if (this.buffer && this.filled >= MIN_PART_BYTES && !this.failure) this.seal();
    this.dropBuffer();
    await this.drained();
    this.destroy();
    return this.ledger.checkpoint();
  }
}

