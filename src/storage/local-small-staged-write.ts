import { sep } from 'node:path';
import { Writable } from 'node:stream';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { stagingName } from '../io/staging-name';
import type { StagingServices } from './local-staged-write';
import { SmallCommits, isPublishedFailure } from './small-commits';
import { CommittedFile, VerifiedContent, StagedWrite } from './storage-adapter';
import { notDurable, storageError } from './storage-errors';
import { sizeReplaced } from './opened-paths';

/**
 * One small upload (size declared up front, at most SMALL_FILE_BYTES): the data is kept in memory
 * and the staging file is created only at commit, by the group committer (SmallCommits), which
 * writes, fsyncs, renames and fsyncs the folder just as LocalStagedWrite does, in a worker, many
 * files at a time. So nothing touches the disk before the data is verified, and an abort has
 * nothing to clean up. Storage failures (no space, no permission) surface at commit, as a failure
 * mid-data does for a large file. Their digests go to their folder's digest log (see DigestIndex).
 */
export class LocalSmallStagedWrite implements StagedWrite {
  /** Made on first use: a file handed over whole (`writeWhole`, a BATCH's) needs no stream. */
  private stream: Writable | undefined;
  /**
   * The file's bytes, exactly the declared size: handed over whole (writeWhole), or made for the
   * stream on first use. Not made up front: a BATCH's file is whole in hand already, and a zeroed
   * buffer per file that it then replaced was garbage the size of every file (issue 20).
   */
  private data: Uint8Array | undefined;
  private received = 0;
  private settled = false;

  constructor(
    private readonly name: RemoteName,
    private readonly target: string,
    private readonly size: number,
    private readonly createOnly: boolean,
    private readonly commits: SmallCommits,
    private readonly measureReplaced: boolean,
    /** Runs a commit in the target's folder, made again if it vanished meanwhile (RootPaths.inFolderFor). */
    private readonly inFolder: <T>(work: (folder: string) => Promise<T>) => Promise<T>,
    /** Its lock is held on the target while the worker renames over it (a RENAME must not interleave). */
    private readonly services: Pick<StagingServices, 'locks' | 'stagingFolder'>,
    /** WriteOptions.admitReplaced: under the name's lock, with the size about to be replaced; throwing stops the commit. */
    private readonly admitReplaced?: (replacedBytes: number) => void,
  ) {}

  get sink(): Writable {
    return (this.stream ??= this.makeSink());
  }

  /** The whole file at once, kept as it is (no copy): the caller hands it over and does not change it. */
  writeWhole(data: Uint8Array): void {
    if (this.received !== 0 || data.length !== this.size) {
      throw new RxferError('STORAGE_FAILED', `cannot store ${this.name}: ${data.length} bytes handed over for a declared ${this.size}; nothing stored`);
    }
    this.data = data;
    this.received = data.length;
  }

  private makeSink(): Writable {
    const data = (this.data ??= new Uint8Array(this.size));
    const sink = new Writable({
      // Above the largest small file, so that write() never asks the socket to wait for a drain.
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _encoding, done) => {
        if (this.received + chunk.length > data.length) {
          return done(new RxferError('STORAGE_FAILED', `cannot store ${this.name}: more than the declared ${data.length} bytes arrived; nothing stored`));
        }
        data.set(chunk, this.received);
        this.received += chunk.length;
        done();
      },
    });
    // Errors surface through commit(); an unhandled 'error' event would crash the process.
    sink.on('error', () => undefined);
    return sink;
  }

  async commit(verified: VerifiedContent): Promise<CommittedFile> {
    if (this.settled) throw new RxferError('STORAGE_FAILED', `cannot store ${this.name}: the upload was aborted before its commit; nothing stored`);
    this.settled = true;
    const { target, createOnly, measureReplaced } = this;
    // Nothing handed over and no stream: only an empty file has all of its bytes.
    const data = this.data ?? new Uint8Array(0);
    if (this.stream?.errored || this.received !== verified.size || data.length !== verified.size) {
      this.stream?.destroy();
      // The reason in words (storageError of a plain Error would only say UNKNOWN to the client).
      throw storageError(
        this.stream?.errored ?? new RxferError('STORAGE_FAILED', `cannot store ${this.name}: ${this.received} of ${verified.size} bytes staged; nothing stored`),
        'store',
        this.name,
      );
    }
    try {
      // The bytes stay here (copied to the worker), so a commit into a vanished folder can run again.
      const { mtimeMs, replacedBytes } = await this.services.locks.with([target], () =>
        this.inFolder(async (folder) => {
          // A quota checks what this commit replaces before it does: measured here, under the name's lock, and then
          // not again by the worker (the name cannot change in between).
          // Looked at inside the checked folder, opened (a swap for a link must not size a file outside the root).
          const replaced = this.admitReplaced && !createOnly ? await sizeReplaced(folder, target) : undefined;
          if (replaced !== undefined) this.admitReplaced!(replaced);
          // The digest goes to the folder's digest log in the same batch, so LIST and STAT need not read the file.
          const staging = `${this.services.stagingFolder}${sep}${stagingName()}`;
          const job = { data, staging, target, folder, createOnly, measureReplaced: measureReplaced && replaced === undefined, name: this.name, hash: verified.hash, digest: verified.digest };
          const done = await this.commits.commit(job).catch((err: unknown) => {
            // In place, its folder not synced: NOT_DURABLE, with what it replaced. Here, so that inFolder does
            // not take the folder's ENOENT for a vanished folder and commit again.
            if (isPublishedFailure(err)) throw notDurable(err, `${this.name} is stored`, { replacedBytes: replaced ?? err.published.replacedBytes });
            throw err;
          });
          return replaced === undefined ? done : { ...done, replacedBytes: replaced };
        }),
      );
      return { name: this.name, size: verified.size, digest: verified.digest, mtimeMs, replacedBytes };
    } catch (err) {
      throw storageError(err, 'store', this.name);
    }
  }

  async abort(): Promise<void> {
    this.settled = true;
    this.stream?.destroy();
  }

  /**
   * A lost connection: nothing is kept. Sending a small file again costs less than resuming it
   * (main's resume work keeps partial uploads from 1 MiB); this is there for its StagedWrite.
   */
  async suspend(): Promise<number> {
    await this.abort();
    return 0;
  }
}
