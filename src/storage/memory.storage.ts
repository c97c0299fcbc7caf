import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { RxferError } from '../errors/rxfer-error';
import { DEFAULT_HASH, HashAlgorithm, hashOf } from '../integrity/hash-algorithm';
import { bufferHasPrefix } from '../integrity/hash-prefix';
import { RemoteName } from '../protocol/remote-name';
import { FileStatus, HashChoice, ListOptions, ListedFile, ReadHandle, ReadOptions, StagedWrite, StorageAdapter, StoredFile, WriteOptions } from './storage-adapter';

interface MemoryFile {
  readonly name: RemoteName;
  readonly size: number;
  readonly mtimeMs: number;
  readonly data: Buffer;
  /** The digest the upload verified, and others computed when a client asked in another algorithm. */
  readonly digests: Partial<Record<HashAlgorithm, string>>;
}

const digestOf = (file: MemoryFile, algorithm: HashAlgorithm): string => (file.digests[algorithm] ??= hashOf(algorithm, file.data));

const described = (file: MemoryFile, algorithm: HashAlgorithm): StoredFile => ({ name: file.name, size: file.size, mtimeMs: file.mtimeMs, digest: digestOf(file, algorithm) });

/**
 * Files in the process's memory: for tests and throw-away servers. Same contract as the local
 * adapter (staged, atomic, create-only checked at commit), but it holds whole files by design.
 */
export class MemoryStorage implements StorageAdapter {
  readonly kind = 'memory';
  private readonly files = new Map<string, MemoryFile>();

  async init(): Promise<void> {}

  /** Folders are implicit here: a folder exists while a file (or an explicit MKDIR) is under it. */
  private readonly folders = new Set<string>();

  private isFolder(name: string): boolean {
    return this.folders.has(name) || [...this.files.keys()].some((key) => key.startsWith(name + '/'));
  }

  async stat(name: RemoteName, { hash = DEFAULT_HASH }: HashChoice = {}): Promise<FileStatus> {
    const file = this.files.get(name);
    if (file) return { type: 'file', size: file.size, mtimeMs: file.mtimeMs, digest: digestOf(file, hash) };
    if (this.isFolder(name)) return { type: 'folder', size: 0, mtimeMs: 0 };
    throw new RxferError('NOT_FOUND', `${name} does not exist`);
  }

  async remove(name: RemoteName): Promise<number> {
    const file = this.files.get(name);
    if (file) {
      this.files.delete(name);
      return file.size;
    }
    if ([...this.files.keys()].some((key) => key.startsWith(name + '/'))) throw new RxferError('NAME_CONFLICT', `${name} is a folder that is not empty`);
    if (this.folders.delete(name)) return 0;
    throw new RxferError('NOT_FOUND', `${name} does not exist`);
  }

  async rename(from: RemoteName, to: RemoteName): Promise<void> {
    if (this.files.has(to) || this.isFolder(to)) throw new RxferError('EXISTS', `${to} already exists`);
    const file = this.files.get(from);
    if (file) {
      this.files.delete(from);
      this.files.set(to, { ...file, name: to as RemoteName });
      return;
    }
    if (!this.isFolder(from)) throw new RxferError('NOT_FOUND', `${from} does not exist`);
    if ((to + '/').startsWith(from + '/')) throw new RxferError('NAME_CONFLICT', `cannot move the folder ${from} into itself`);
    for (const [key, moved] of [...this.files]) {
      if (!key.startsWith(from + '/')) continue;
      const renamed = (to + key.slice(from.length)) as RemoteName;
      this.files.delete(key);
      this.files.set(renamed, { ...moved, name: renamed });
    }
    if (this.folders.delete(from)) this.folders.add(to);
  }

  async makeFolder(name: RemoteName): Promise<void> {
    if (this.files.has(name) || this.isFolder(name)) throw new RxferError('EXISTS', `${name} already exists`);
    this.folders.add(name);
  }

  async sizeOf(name: RemoteName): Promise<number | undefined> {
    return this.files.get(name)?.size;
  }

  async openRead(name: RemoteName, { from, hash = DEFAULT_HASH }: ReadOptions = {}): Promise<ReadHandle> {
    const file = this.files.get(name);
    if (!file) throw new RxferError('NOT_FOUND', `${name} does not exist`);
    const offset = from && bufferHasPrefix(file.data, from, hash) ? from.offset : 0;
    const rest = file.data.subarray(offset);
    return { file: described(file, hash), stream: Readable.from(rest.length ? [rest] : []), offset };
  }

  /** Pages in name order (path segment by segment, as the local storage lists). */
  readonly listsInPages = true;

  /** LIST FOLDERS / SHALLOW: folders made by MKDIR and those holding files, as the local storage lists them. */
  readonly listsFolders = true;

  async list(prefix: string, { limit, hash = DEFAULT_HASH, page, folders, shallow }: ListOptions): Promise<ListedFile[]> {
    const base = prefix === '' ? '' : prefix + '/';
    const below = (name: string) => name.startsWith(base) && (!shallow || !name.slice(base.length).includes('/'));
    const entries: ListedFile[] = [...this.files.values()].filter((file) => below(file.name)).map((file) => described(file, hash));
    if (folders) {
      // Every folder below `prefix`: those made by MKDIR, and each one above a file or such folder.
      const names = new Set<string>();
      for (const name of [...this.folders, ...this.files.keys()]) {
        const segments = name.slice(base.length).split('/');
        if (!name.startsWith(base)) continue;
        for (let i = 1; i <= segments.length; i++) names.add(base + segments.slice(0, i).join('/'));
      }
      for (const name of this.files.keys()) names.delete(name);
      for (const name of names) if (below(name)) entries.push({ name, size: 0, mtimeMs: 0, folder: true });
    }
    if (page) {
      const after = page.after;
      const sorted = entries.sort((a, b) => compareSegments(a.name, b.name)).filter((entry) => after === undefined || afterCursor(entry.name, after, page.afterFolder === true && shallow === true));
      return sorted.slice(0, limit + 1);
    }
    if (entries.length > limit) throw new RxferError('TOO_LARGE', `more than ${limit} ${folders ? 'entries' : 'files'} under ${prefix || 'the root'}; list a narrower folder`);
    return entries;
  }

  async usage(prefix: string): Promise<number> {
    let total = 0;
    for (const [name, file] of this.files) if (prefix === '' || name.startsWith(prefix + '/')) total += file.size;
    return total;
  }

  /** Keeps no partial uploads (they would die with the process): a resume always starts over. */
  async beginWrite(name: RemoteName, { createOnly, resume }: WriteOptions): Promise<StagedWrite> {
    if (resume) throw new RxferError('RESUME_MISMATCH', `cannot resume ${name}: this server keeps no interrupted uploads; upload it from the start`);
    if (createOnly && this.files.has(name)) throw new RxferError('EXISTS', `${name} already exists`);
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    let settled = false;
    const abort = async () => {
      if (!settled) chunks.length = 0;
      settled = true;
    };
    return {
      sink,
      commit: async ({ size, digest, hash }) => {
        settled = true;
        sink.end();
        await finished(sink);
        if (createOnly && this.files.has(name)) throw new RxferError('EXISTS', `${name} already exists`);
        const file: MemoryFile = { name, size, mtimeMs: Date.now(), data: Buffer.concat(chunks), digests: { [hash]: digest } };
        const replacedBytes = this.files.get(name)?.size ?? 0;
        this.files.set(name, file);
        return { name, size, digest, mtimeMs: file.mtimeMs, replacedBytes };
      },
      abort,
      suspend: () => abort().then(() => 0),
    };
  }
}

/** Names compared path segment by segment ('a/b' before 'a.txt', as a depth-first walk meets them). */
/** Whether `name` comes after the cursor; past a folder cursor's contents too when they are not listed. */
const afterCursor = (name: string, after: string, skipInside: boolean): boolean =>
  compareSegments(name, after) > 0 && !(skipInside && name.startsWith(after + '/'));

const compareSegments = (a: string, b: string): number => {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
};
