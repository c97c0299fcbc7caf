import { Writable } from 'node:stream';
import { RxferError } from '../../errors/rxfer-error';
import type { RemoteName } from '../../protocol/remote-name';
import type { CommittedFile, StagedWrite, VerifiedContent } from '../storage-adapter';
import { PartBudget } from './part-budget';
import { PublishOptions, Publisher } from './publisher';
import { s3Error } from './s3-errors';

/** Flushes a Writable, failing if any write (or its final) failed. */
export const endSink = (sink: Writable): Promise<void> =>
  new Promise((resolve, reject) => {
    if (sink.errored) return reject(sink.errored);
    if (sink.destroyed) return reject(new Error('the upload was closed before its data was sent'));
    sink.end((err?: Error | null) => (err ? reject(err) : sink.errored ? reject(sink.errored) : resolve()));
  });

/**
 * An upload smaller than one part: its bytes wait in one buffer of its declared size (counted in the
 * process's PartBudget) and go out as a single PutObject at commit, so nothing at all reaches the
 * bucket before the digest is verified. Too small to be worth a resume: a lost connection drops it.
 */
export class SmallStagedWrite implements StagedWrite {
  readonly sink: Writable;
  private buffer: Buffer | undefined;
  private filled = 0;
  private settled = false;
  private reserved = false;

  constructor(
    private readonly name: RemoteName,
    private readonly size: number,
    private readonly budget: PartBudget,
    private readonly publisher: Publisher,
    private readonly options: PublishOptions,
  ) {
    this.sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        const room = this.room();
        if (room) void room.then(() => done(this.take(chunk)), done);
        else done(this.take(chunk));
      },
    });
  }

  private room(): Promise<void> | undefined {
    if (this.reserved) return undefined;
    this.reserved = true;
    return this.budget.take(this.size);
  }

  private take(chunk: Buffer): Error | undefined {
    if (this.settled) return new Error('the upload is over');
    if (this.filled + chunk.length > this.size) return new RxferError('INTERNAL', `more than the ${this.size} bytes declared for ${this.name}`);
    this.buffer ??= Buffer.allocUnsafe(this.size);
    chunk.copy(this.buffer, this.filled);
    this.filled += chunk.length;
    return undefined;
  }

  async commit(verified: VerifiedContent): Promise<CommittedFile> {
    try {
      await endSink(this.sink);
      if (this.filled !== verified.size) throw new RxferError('STORAGE_FAILED', `${this.name}: ${this.filled} bytes were staged of the ${verified.size} verified; nothing stored`);
      const body = this.buffer?.subarray(0, this.filled) ?? Buffer.alloc(0);
      // An interrupted upload kept for this name is now stale (a plain upload starts over): it is not
      // looked for here, which would cost every small file a request; a RESUME finds it older than
      // this file and drops it then (KeptUploads), and the sweeper otherwise.
      return await this.publisher.putObject(this.name, body, verified, this.options);
    } catch (err) {
      throw s3Error(err, 'store', this.name);
    } finally {
      this.free();
    }
  }

  private free(): void {
    if (this.settled) return;
    this.settled = true;
    this.buffer = undefined;
    if (this.reserved) this.budget.give(this.size);
  }

  async abort(): Promise<void> {
    this.free();
    this.sink.destroy();
  }

  async suspend(): Promise<number> {
    await this.abort();
    return 0;
  }
}
