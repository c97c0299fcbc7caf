import { closeSync, constants, fstatSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { clientFolders, clientFsync } from '../io/quick-fsync';
import { localIoError, removeQuietly, syncAfterDownload } from './local-io';
import { assertStagedSize, stagingPathFor } from './staging-file';
import { renameIntoFolder } from './checked-rename';

/** Where a download held in memory puts its bytes as they arrive (after they were hashed). */
export interface InMemorySink {
  keep(chunk: Buffer): void;
}

/** Downloads up to this size are held in memory and written in one go at commit (see SmallStagingFile). */
export const SMALL_DOWNLOAD_MAX_BYTES = 64 * 1024;

/**
 * The staging file of a small download (issue 20): its bytes are kept in memory while they arrive and
 * verified, then written to a staging file beside the target in one synchronous write, fsynced,
 * checked to hold exactly the verified size, and renamed over the target; the folder is fsynced after
 * (shared with the other files committed into it meanwhile). Same guarantees as StagingFile — readers
 * never see half a file, a failure leaves the target as it was — but a write stream per file, with its
 * open, writes, end and close, each a thread-pool round trip, made `get -r` of 2,000 × 4 KiB spend
 * most of its time on them (bench/findings.md). The fsyncs go to the thread pool only where they are slow (QuickFsync).
 * Nothing is written before the commit, so nothing is left to clean up when a download fails earlier,
 * and nothing is kept for a resume (a small file costs less to fetch again).
 */
export class SmallStagingFile implements InMemorySink {
  readonly kept = undefined;
  private readonly chunks: Buffer[] = [];
  private received = 0;

  constructor(private readonly target: string) {}

  /**
   * A small download always starts at 0 (nothing is kept). Its bytes are handed to `keep` (no
   * stream: the reader gives them to a function, Connection.readBodyInMemory).
   */
  async startAt(offset: number): Promise<InMemorySink> {
    if (offset !== 0) throw new RxferError('INTERNAL', 'a small download does not resume');
    return this;
  }

  keep(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.received += chunk.length;
  }

  get writeError(): RxferError | undefined {
    return undefined;
  }

  /** `realFolder`: the target's folder as the caller checked it, which the rename must go into (renameIntoFolder). */
  async commit(verifiedSize: number, realFolder?: string): Promise<void> {
    const outcome = `${this.target} was not changed`;
    const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.received);
    this.chunks.length = 0;
    const folder = dirname(this.target);
    const path = stagingPathFor(this.target);
    let fd: number | undefined;
    let step = 'create a staging file in';
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      step = 'write';
      for (let at = 0; at < data.length; ) {
        const n = writeSync(fd, data, at, data.length - at, at);
        if (n === 0) throw Object.assign(new Error(`the file system took no bytes at offset ${at}`), { code: 'EIO' });
        at += n;
      }
      step = 'fsync';
      await clientFsync.file(fd);
      step = 'stat';
      assertStagedSize(path, fstatSync(fd).size, verifiedSize, `nothing was renamed; ${outcome}`);
      step = 'close';
      const closing = fd;
      fd = undefined;
      closeSync(closing);
      step = 'rename';
      renameIntoFolder(path, this.target, realFolder);
    } catch (err) {
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {
          // The failure that brought us here is the one to report.
        }
      }
      await removeQuietly(path);
      throw localIoError(err, step, step === 'create a staging file in' ? folder : step === 'rename' ? `${path} to ${this.target}` : path, outcome);
    }
    // The rename is made: a failure now is NOT_DURABLE, the file in place (syncAfterDownload).
    await syncAfterDownload(clientFolders.sync(folder), this.target);
  }

  /** Nothing was written before the commit; nothing to keep or remove. */
  async giveUp(_interrupted: boolean): Promise<RxferError | undefined> {
    this.chunks.length = 0;
    return undefined;
  }
}
