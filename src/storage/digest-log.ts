import { type Stats, constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HashAlgorithm } from '../integrity/hash-algorithm';
import { type DigestRecord, applyDigestLines, digestLogPath, formatDigestLine, steadyAcross } from './small-commit-log';

/** The version of a file a digest is of: valid only while its size, mtime and inode are unchanged. */
export type FileVersion = Pick<Stats, 'size' | 'mtimeMs' | 'ino'>;

/** A version read whole with nothing changed meanwhile, ctime included: see steadyAcross. */
export type SteadyVersion = FileVersion & Pick<Stats, 'ctimeMs'>;
export { steadyAcross };

/** Records kept in memory across all folders (≈ 200 bytes each); the least recently used folders go first. */
const MAX_CACHED_RECORDS = 100_000;

/** What is known of one folder's small files, as of one read of its log. */
export class FolderDigests {
  constructor(private readonly records: ReadonlyMap<string, DigestRecord>) {}

  /** The digest of the file `name` in this folder, if the log describes it as `stats` show it now. */
  get(name: string, stats: FileVersion, algorithm: HashAlgorithm): string | undefined {
    return this.recordOf(name, stats)?.d[algorithm];
  }

  /** The log's record of the file `name` in this folder, if it describes it as `stats` show it now. */
  recordOf(name: string, stats: FileVersion): DigestRecord | undefined {
    return recordIn(this.records, name, stats);
  }
}

/** `records`' record of the file `name` (in their folder), if it describes it as `stats` show it now. */
const recordIn = (records: ReadonlyMap<string, DigestRecord>, name: string, stats: FileVersion): DigestRecord | undefined => {
  const record = records.get(name);
  return record && record.s === stats.size && record.m === stats.mtimeMs && record.i === stats.ino ? record : undefined;
};

interface CachedLog {
  ino: number;
  /** Bytes of the log applied so far: up to its last complete line. */
  bytes: number;
  readonly records: Map<string, DigestRecord>;
  refreshing?: Promise<void>;
}

const NOTHING = new FolderDigests(new Map());

/**
 * The reading side of the folders' digest logs (small-commit-log.js; the small-commit worker writes
 * them). A log only grows between compactions, so a folder read before is brought up to date by
 * reading what was appended since (one stat when nothing was): STATs pipelined over a folder of
 * thousands of files cost no re-parse each. A compaction replaces the file (a new inode): read whole.
 */
export class DigestLog {
  private readonly cache = new Map<string, CachedLog>();
  private cachedRecords = 0;

  /** `directory`: where the logs are (`<root>/.rxfer/sums/folders`). */
  constructor(readonly directory: string) {}

  pathOf(folderName: string): string {
    return digestLogPath(this.directory, folderName);
  }

  /** A record line for `name` (a storage name) as `stats` describe it, and the log it goes to. */
  /**
   * Whether the log of `name`'s folder, as last read or appended to here, has `digest` for the file
   * as `version` describes it. No system call: false for a folder not read yet (or evicted).
   */
  hasInMemory(name: string, version: FileVersion, algorithm: HashAlgorithm, digest: string): boolean {
    const folder = folderOf(name);
    const records = this.cache.get(folder)?.records;
    return records !== undefined && recordIn(records, baseOf(name, folder), version)?.d[algorithm] === digest;
  }

  /** The record of the file `name` (a storage name) as `version` describes it, from its folder's log read now. */
  async recordOf(name: string, version: FileVersion): Promise<DigestRecord | undefined> {
    const folder = folderOf(name);
    return (await this.folder(folder)).recordOf(baseOf(name, folder), version);
  }

  lineFor(name: string, stats: FileVersion, algorithm: HashAlgorithm, digest: string): { log: string; line: string } {
    const folder = folderOf(name);
    const base = baseOf(name, folder);
    const line = formatDigestLine(base, stats.size, stats.mtimeMs, stats.ino, algorithm, digest);
    // Known at once here too: the worker appends it a moment later.
    const cached = this.cache.get(folder);
    if (cached) {
      const before = cached.records.size;
      applyDigestLines(line, cached.records);
      this.count(cached.records.size - before);
    }
    return { log: this.pathOf(folder), line };
  }

  /** What the log of the folder `folderName` ('' for the root) says now. */
  async folder(folderName: string): Promise<FolderDigests> {
    const path = this.pathOf(folderName);
    const now = await stat(path).catch(() => undefined);
    // Not a file (a folder, or a link to one, planted there): no log, as if missing. Read, it threw
    // EISDIR through every LIST and STAT of the folder (hostile-2026-12-04b-log-is-a-folder).
    if (!now?.isFile()) {
      this.forget(folderName);
      return NOTHING;
    }
    let cached = this.cache.get(folderName);
    if (cached && (cached.ino !== now.ino || now.size < cached.bytes)) {
      this.forget(folderName);
      cached = undefined;
    }
    if (!cached) {
      cached = { ino: now.ino, bytes: 0, records: new Map() };
      this.cache.set(folderName, cached);
    }
    // Most recently used last, for eviction.
    this.cache.delete(folderName);
    this.cache.set(folderName, cached);
    if (now.size > cached.bytes) {
      const reading = cached;
      reading.refreshing ??= this.readTail(path, reading).finally(() => (reading.refreshing = undefined));
      await reading.refreshing;
    }
    this.evict();
    return new FolderDigests(cached.records);
  }

  private async readTail(path: string, cached: CachedLog): Promise<void> {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
    if (!handle) return;
    try {
      const { size, ino } = await handle.stat();
      if (ino !== cached.ino || size <= cached.bytes) return;
      const tail = Buffer.allocUnsafe(size - cached.bytes);
      const { bytesRead } = await handle.read(tail, 0, tail.length, cached.bytes).catch(() => ({ bytesRead: 0 }));
      // Only complete lines: the one being appended right now is read next time.
      const end = tail.subarray(0, bytesRead).lastIndexOf(0x0a) + 1;
      if (end === 0) return;
      const before = cached.records.size;
      applyDigestLines(tail.subarray(0, end).toString('utf8'), cached.records);
      cached.bytes += end;
      this.count(cached.records.size - before);
    } finally {
      await handle.close();
    }
  }

  private count(added: number): void {
    this.cachedRecords += added;
  }

  private forget(folderName: string): void {
    const cached = this.cache.get(folderName);
    if (!cached) return;
    this.cache.delete(folderName);
    this.cachedRecords -= cached.records.size;
  }

  private evict(): void {
    for (const folder of this.cache.keys()) {
      if (this.cachedRecords <= MAX_CACHED_RECORDS || this.cache.size <= 1) return;
      this.forget(folder);
    }
  }
}

/** A storage name's last part, in its folder `folder` (folderOf). */
const baseOf = (name: string, folder: string): string => (folder === '' ? name : name.slice(folder.length + 1));

/** The storage name of a name's folder ('' for the root). */
export const folderOf = (name: string): string => {
  const folder = dirname(name);
  return folder === '.' ? '' : folder;
};
