import { createHash, randomBytes } from 'node:crypto';
import { Stats } from 'node:fs';
import { FileHandle, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HashAlgorithm } from '../integrity/hash-algorithm';
import { hashUpTo } from '../integrity/hash-prefix';

/** What we remember of a file's content: valid only while size, mtime and inode are unchanged. */
interface DigestRecord {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  /** One digest per algorithm a client asked for (an upload computes only its own). */
  readonly digests: Partial<Record<HashAlgorithm, string>>;
}

/**
 * Files up to this size keep no record: they are read whole and hashed when needed (one read, a few
 * microseconds of SHA-256), which is cheaper than the open/write/close/rename a record costs.
 */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * Digests of committed files (SHA-256, BLAKE3: whichever clients used or asked for), kept in small JSON sidecars under `<root>/.rxfer/sums/` so a DOWNLOAD
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

  private async read(name: string, stats: Stats): Promise<DigestRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(this.recordPath(name), 'utf8')) as DigestRecord;
      const fresh = record.name === name && record.size === stats.size && record.mtimeMs === stats.mtimeMs && record.ino === stats.ino;
      return fresh && typeof record.digests === 'object' ? record : undefined;
    } catch {
      return undefined;
    }
  }

  async lookup(name: string, stats: Stats, algorithm: HashAlgorithm): Promise<string | undefined> {
    return (await this.read(name, stats))?.digests[algorithm];
  }

  /**
   * Records `digest` for the file as `stats` describe it. `alongside`: keep the other algorithms'
   * digests of a record that is still fresh (a file hashed again for another client, not replaced).
   */
  async remember(name: string, stats: Stats, algorithm: HashAlgorithm, digest: string, alongside = false): Promise<void> {
    const others = alongside ? (await this.read(name, stats))?.digests : undefined;
    const record: DigestRecord = { name, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, digests: { ...others, [algorithm]: digest } };
    const target = this.recordPath(name);
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(record));
    await rename(temp, target);
  }

  /** The digest for an open file: remembered if still valid, otherwise computed (once) and remembered. */
  async digestOf(name: string, handle: FileHandle, stats: Stats, algorithm: HashAlgorithm): Promise<string> {
    const known = await this.lookup(name, stats, algorithm);
    if (known !== undefined) return known;
    const digest = await hashHandle(handle, stats.size, algorithm);
    await this.remember(name, stats, algorithm, digest, true).catch(() => undefined);
    return digest;
  }
}

/** Digest of the first `size` bytes of an open file (of fewer if it was truncated meanwhile: what a reader sees). */
export const hashHandle = async (handle: FileHandle, size: number, algorithm: HashAlgorithm): Promise<string> =>
  (await hashUpTo(handle, size, algorithm)).hash.hex();
