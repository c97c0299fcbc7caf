import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { ListedFile, ReadHandle, StagedWrite, StorageAdapter, StoredFile, WriteOptions } from './storage-adapter';

interface MemoryFile extends StoredFile {
  readonly data: Buffer;
}

/**
 * Files in the process's memory: for tests and throw-away servers. Same contract as the local
 * adapter (staged, atomic, create-only checked at commit), but it holds whole files by design.
 */
export class MemoryStorage implements StorageAdapter {
  readonly kind = 'memory';
  private readonly files = new Map<string, MemoryFile>();

  async init(): Promise<void> {}

  async sizeOf(name: RemoteName): Promise<number | undefined> {
    return this.files.get(name)?.size;
  }

  async openRead(name: RemoteName): Promise<ReadHandle> {
    const file = this.files.get(name);
    if (!file) throw new RxferError('NOT_FOUND', `${name} does not exist`);
    return { file, stream: Readable.from(file.data.length ? [file.data] : []) };
  }

  async list(prefix: string, { limit }: { limit: number }): Promise<ListedFile[]> {
    const files = [...this.files.values()].filter((file) => prefix === '' || file.name.startsWith(prefix + '/'));
    if (files.length > limit) throw new RxferError('TOO_LARGE', `more than ${limit} files under ${prefix || 'the root'}; list a narrower folder`);
    return files.map(({ name, size, mtimeMs, sha256 }) => ({ name, size, mtimeMs, sha256 }));
  }

  async usage(prefix: string): Promise<number> {
    let total = 0;
    for (const [name, file] of this.files) if (prefix === '' || name.startsWith(prefix + '/')) total += file.size;
    return total;
  }

  async beginWrite(name: RemoteName, { createOnly }: WriteOptions): Promise<StagedWrite> {
    if (createOnly && this.files.has(name)) throw new RxferError('EXISTS', `${name} already exists`);
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    let settled = false;
    return {
      sink,
      commit: async ({ size, sha256 }) => {
        settled = true;
        sink.end();
        await finished(sink);
        if (createOnly && this.files.has(name)) throw new RxferError('EXISTS', `${name} already exists`);
        const file: MemoryFile = { name, size, sha256, mtimeMs: Date.now(), data: Buffer.concat(chunks) };
        const replacedBytes = this.files.get(name)?.size ?? 0;
        this.files.set(name, file);
        return { name, size, sha256, mtimeMs: file.mtimeMs, replacedBytes };
      },
      abort: async () => {
        if (!settled) chunks.length = 0;
        settled = true;
      },
    };
  }
}
