import { randomBytes } from 'node:crypto';
import { close, createWriteStream, fsync, open, promises as fsp, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { RxferError } from '../errors/rxfer-error';
import { localIo, removeQuietly } from './local-io';

/** fs write streams below 256 KiB chunks cost throughput (TOOLCHAIN.md). */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Refuses a target that is a directory before anything is fetched; a missing target is fine. */
export const refuseDirectory = async (target: string): Promise<void> => {
  const stats = await fsp.stat(target).catch(() => undefined);
  if (stats?.isDirectory()) throw new RxferError('LOCAL_IO', `cannot write ${target}: it is a directory`, { path: target });
};

/**
 * A download is written to a staging file beside its target and renamed over it only once it is
 * complete, verified and on disk: readers never see half a file, and a failed download leaves the old
 * file as it was (unlike writing the real name with `w+` and unlinking on error, see STYLE.md).
 * We keep the descriptor ourselves (`autoClose: false`) so that we can fsync it before closing.
 */
export class StagingFile {
  private closed = false;
  private failure: unknown;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly stream: WriteStream,
  ) {
    stream.on('error', (err) => (this.failure ??= err));
  }

  /** The error the stream hit, if any: tells a local write failure from a connection failure. */
  get writeError(): unknown {
    return this.failure;
  }

  static async create(target: string): Promise<StagingFile> {
    const folder = dirname(target);
    const path = join(folder, `.${shortened(basename(target))}.rxfer-part-${randomBytes(6).toString('hex')}`);
    const fd = await localIo('create a staging file in', folder, () => promisify(open)(path, 'wx'));
    const stream = createWriteStream(path, { fd, autoClose: false, highWaterMark: WRITE_BUFFER_BYTES });
    return new StagingFile(path, fd, stream);
  }

  /** Flushes, fsyncs and renames over `target`, then fsyncs the folder so the rename is durable too. */
  async commit(target: string): Promise<void> {
    await localIo('write', this.path, async () => {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => {
        this.stream.once('error', reject);
        this.stream.end(() => resolve());
      });
      if (this.failure) throw this.failure;
      await promisify(fsync)(this.fd);
    });
    await this.closeFd();
    await localIo('rename', `${this.path} to ${target}`, () => fsp.rename(this.path, target));
    await syncFolder(dirname(target));
  }

  /** Removes the staging file; safe to call at any point, and more than once. */
  async discard(): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy();
    // A write may still be in flight on the descriptor: closing it under the stream could hand the
    // same number to another open() and let that write land in the wrong file.
    if (!this.stream.closed) await new Promise<void>((resolve) => this.stream.once('close', () => resolve()));
    await this.closeFd().catch(() => undefined);
    await removeQuietly(this.path);
  }

  private async closeFd(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await localIo('close', this.path, () => promisify(close)(this.fd));
  }
}

/** Keeps staging names under NAME_MAX (255 bytes) even for a target name at the limit. */
const shortened = (name: string, maxBytes = 160): string => {
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > maxBytes) break;
    out += ch;
  }
  return out;
};

/** Best effort: some platforms and file systems cannot fsync a directory, and the data is safe already. */
const syncFolder = async (folder: string): Promise<void> => {
  const handle = await fsp.open(folder, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close().catch(() => undefined);
};
