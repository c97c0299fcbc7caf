import { createHash, randomBytes } from 'node:crypto';
import { Stats } from 'node:fs';
import { FileHandle, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashUpTo } from '../integrity/hash-prefix';

/** What we remember of a file's content: valid only while size, mtime and inode are unchanged. */
interface DigestRecord {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly sha256: string;
}

/**
 * Files up to this size keep no record: they are read whole and hashed when needed (one read, a few
 * microseconds of SHA-256), which is cheaper than the open/write/close/rename a record costs.
 */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * SHA-256 of committed files, kept in small JSON sidecars under `<root>/.rxfer/sums/` so a DOWNLOAD
 * can announce the digest before the data without reading the file twice. A sidecar is a cache, not
 * the truth: if the file was changed by other means (size, mtime or inode differ) it is ignored and
 * the file is hashed again. Sidecars are written atomically (temp + rename) but not fsynced, because
 * losing one costs only a re-hash.
 */
export class DigestIndex {
  private readonly folder: string;

  constructor(realRoot: string) {
    this.folder = join(realRoot, '.rxfer', 'sums');
  }

  async init(): Promise<void> {
    await mkdir(this.folder, { recursive: true });
  }

  private recordPath(name: string): string {
    return join(this.folder, createHash('sha256').update(name).digest('hex') + '.json');
  }

  async lookup(name: string, stats: Stats): Promise<string | undefined> {
    try {
      const record = JSON.parse(await readFile(this.recordPath(name), 'utf8')) as DigestRecord;
      const fresh = record.name === name && record.size === stats.size && record.mtimeMs === stats.mtimeMs && record.ino === stats.ino;
      return fresh ? record.sha256 : undefined;
    } catch {
      return undefined;
    }
  }

  async remember(name: string, stats: Stats, sha256: string): Promise<void> {
    const record: DigestRecord = { name, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, sha256 };
    const target = this.recordPath(name);
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(record));
    await rename(temp, target);
  }

  /** The digest for an open file: remembered if still valid, otherwise computed (once) and remembered. */
  async digestOf(name: string, handle: FileHandle, stats: Stats): Promise<string> {
    const known = await this.lookup(name, stats);
    if (known !== undefined) return known;
    const sha256 = await hashHandle(handle, stats.size);
    await this.remember(name, stats, sha256).catch(() => undefined);
    return sha256;
  }
}

/** SHA-256 of the first `size` bytes of an open file (of fewer if it was truncated meanwhile: what a reader sees). */
export const hashHandle = async (handle: FileHandle, size: number): Promise<string> => (await hashUpTo(handle, size)).hash.digest('hex');
