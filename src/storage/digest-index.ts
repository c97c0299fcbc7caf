import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { FileHandle, mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { HashAlgorithm } from '../integrity/hash-algorithm';
import { hashUpTo } from '../integrity/hash-prefix';
import { stagingName } from '../io/staging-name';
import { DigestLog, FileVersion, FolderDigests, SteadyVersion, folderOf, steadyAcross } from './digest-log';
import { COMPACT_FROM_BYTES, COMPACT_UP_TO_BYTES, grownForCompaction, readCompactedSize, regularLogStats } from './small-commit-log';
import { READ_FLAGS, inServerFolderSync, quietly } from './opened-paths';

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
 * How old a file's last change (its ctime) must be for a digest the server hashed on demand to be
 * recorded. File times come from a coarse clock (a tick of a few ms; a second or two on some file
 * systems), so another program's write in the same tick as the version hashed leaves size, mtime and
 * inode as they were: recorded, the digest would be told of bytes it is not of, and a re-run would
 * skip a changed file. As git's racy-index rule: a file changed in the last seconds is hashed again
 * next time instead.
 */
export const SETTLED_MS = 2000;

/**
 * Whether `version` was last changed long enough ago for its digest to be recorded (SETTLED_MS): by
 * its ctime, which every write and utimes moves to now; an mtime any writer can set back.
 */
const settled = (version: SteadyVersion): boolean => Date.now() - version.ctimeMs > SETTLED_MS;

/** Records kept in memory (≈ 300 bytes each). */
const RECENT_RECORDS = 4096;

/** Whether `record` is about the file as `stats` describe it now (changed by other means: not). */
const describes = (record: DigestRecord, name: string, stats: FileVersion): boolean =>
  record.name === name && record.size === stats.size && record.mtimeMs === stats.mtimeMs && record.ino === stats.ino;

/**
 * Files up to this size keep no sidecar (the open/write/close/rename of one would cost more than the
 * upload): their digests go to their folder's digest log instead, appended by the small-commit
 * worker in the batch that commits them (DigestLog), so that LIST and STAT never read them.
 */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * Digests of committed files (SHA-256, BLAKE3: whichever clients used or asked for), kept in small
 * JSON sidecars under `<root>/.rxfer/sums/` so a DOWNLOAD can announce the digest before the data
 * without reading the file twice. A sidecar is a cache, not
 * the truth: if the file was changed by other means (size, mtime or inode differ) it is ignored and
 * the file is hashed again. Sidecars are written atomically (temp + rename) but not fsynced, because
 * losing one costs only a re-hash.
 */
export class DigestIndex {
  private readonly folder: string;
  /**
   * The records read or written last, by name, most recent last: a download of a file served or
   * stored a moment ago needs no sidecar read (four thread-pool round trips). Checked against the
   * file's stat like a sidecar; bounded, so memory stays flat however many files there are.
   */
  private readonly recent = new Map<string, DigestRecord>();
  /**
   * Files hashed on demand at once. Pipelined downloads open their files side by side, and each hash
   * holds a 1 MiB read buffer: unbounded, 64 downloads of files never hashed in the asked algorithm
   * added ≈ 40 MiB to the server's peak. The work is CPU-bound, so more at once than cores gains nothing.
   */
  private readonly hashing = new Gate(2);
  /**
   * Hashes under way, by algorithm, name and version (ctime too): downloads of one file the server
   * has no record of, asked for at once, share one read of it. A file just put there by other means is
   * not recorded for two seconds (rememberHashed), so without this each of ten downloads read all of
   * it again, and the last ones overran the storage deadline (slow-peers, under load).
   */
  private readonly hashingNow = new Map<string, Promise<string>>();
  /** The small files' digests, one log per folder. */
  readonly logs: DigestLog;
  /**
   * Told when a record made here (a small file hashed on demand) grew its folder's log enough for a
   * compaction: `folderName` is the folder's storage name, `size` the log's. The commit worker's own
   * appends compact there; without this, a folder whose files are only ever put there by other means
   * and downloaded grew a line per new version for good.
   */
  onLogGrown?: (log: string, folderName: string, size: number) => void;

  constructor(realRoot: string) {
    this.folder = join(realRoot, '.rxfer', 'sums');
    this.logs = new DigestLog(join(this.folder, 'folders'));
  }

  async init(): Promise<void> {
    const logs = join(this.folder, 'folders');
    await mkdir(logs, { recursive: true });
    // What a crash cut short: a log's compaction or a record's write leaves a temporary file whose
    // name (pid, thread, random) nothing reuses, so without this each crash would add one for good,
    // outside any quota (found by a hostile test: hostile-2026-12-04b-killed-compaction). Another
    // server on the same root losing its temporary file only loses that cache write.
    for (const folder of [this.folder, logs]) {
      for (const name of await readdir(folder).catch(() => [] as string[])) {
        if (name.endsWith('.tmp')) await unlink(join(folder, name)).catch(() => undefined);
      }
    }
  }

  /** What the digest log of the folder `folderName` knows (for a LIST: one read per folder). */
  folderDigests(folderName: string): Promise<FolderDigests> {
    return this.logs.folder(folderName);
  }

  /** A large file's record, in the records' folder. */
  private recordFile(name: string): string {
    return createHash('sha256').update(name).digest('hex') + '.json';
  }

  private async read(name: string, stats: FileVersion): Promise<DigestRecord | undefined> {
    const known = this.recent.get(name);
    if (known && describes(known, name, stats)) {
      this.keep(known);
      return known;
    }
    try {
      // O_NONBLOCK: a FIFO planted under the record's name reads as nothing, never holds a thread for good (hostile pass q).
      const record = JSON.parse(await readFile(join(this.folder, this.recordFile(name)), { encoding: 'utf8', flag: READ_FLAGS })) as DigestRecord;
      if (!describes(record, name, stats) || typeof record.digests !== 'object') return undefined;
      this.keep(record);
      return record;
    } catch {
      return undefined;
    }
  }

  /** Remembers `record` in memory as the most recent, forgetting the oldest beyond the bound. */
  private keep(record: DigestRecord): void {
    this.recent.delete(record.name);
    this.recent.set(record.name, record);
    if (this.recent.size > RECENT_RECORDS) this.recent.delete(this.recent.keys().next().value!);
  }

  async lookup(name: string, stats: FileVersion, algorithm: HashAlgorithm): Promise<string | undefined> {
    if (stats.size <= SMALL_FILE_BYTES) return (await this.logs.recordOf(name, stats))?.d[algorithm];
    return (await this.read(name, stats))?.digests[algorithm];
  }

  /**
   * Records `digest` for the file as `stats` describe it. `alongside`: keep the other algorithms'
   * digests of a record that is still fresh (a file hashed again for another client, not replaced).
   */
  async remember(name: string, stats: FileVersion, algorithm: HashAlgorithm, digest: string, alongside = false): Promise<void> {
    if (stats.size <= SMALL_FILE_BYTES) {
      // A log line joins the other algorithms' digests of the same version by itself. (Commits'
      // lines come from the small-commit worker; this is for files hashed on demand.)
      const { log, line } = this.logs.lineFor(name, stats, algorithm, digest);
      // Never through a link planted under the log's name (it would append to the file it points at),
      // nor through the logs' folder swapped for one (inServerFolderSync: an append of a few µs made
      // the log's line in a folder outside the root; hostile pass u).
      const size = inServerFolderSync(dirname(log), (inside) => {
        // Non-blocking, and only a regular file written to: a FIFO planted under the log's name would
        // otherwise hold this thread, the server's main one, at its open or once its buffer is full.
        const fd = openSync(join(inside, basename(log)), constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
        try {
          const found = regularLogStats(fd, log);
          writeFileSync(fd, line);
          const now = found.size + Buffer.byteLength(line);
          // Due for a compaction (its header tells its size after the last one), as the worker's appends are.
          return now <= COMPACT_UP_TO_BYTES && grownForCompaction(now, now > COMPACT_FROM_BYTES ? readCompactedSize(fd) : 0) ? now : undefined;
        } finally {
          closeSync(fd);
        }
      });
      if (size !== undefined) this.onLogGrown?.(log, folderOf(name), size);
      return;
    }
    const others = alongside ? (await this.read(name, stats))?.digests : undefined;
    const record: DigestRecord = { name, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, digests: { ...others, [algorithm]: digest } };
    this.keep(record);
    // In the records' folder opened and shown to be it (inServerFolderSync: one swapped for a link
    // must not have a record made outside the root; hostile pass p). Written synchronously: calls of
    // a few µs that never wait for a device (no fsync), where four thread-pool round trips cost the
    // main thread more (issue 20); so no record is ever in flight. The temporary name is unique per
    // process without a CSPRNG call per record (as staging files are named).
    const file = this.recordFile(name);
    const temp = `${file}${stagingName()}.tmp`;
    inServerFolderSync(this.folder, (inside) => {
      try {
        const fd = openSync(join(inside, temp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666);
        try {
          writeFileSync(fd, JSON.stringify(record));
        } finally {
          closeSync(fd);
        }
        renameSync(join(inside, temp), join(inside, file));
      } catch (err) {
        // A full disk must not leave half-written records behind, one per commit (never made: nothing to remove).
        quietly(() => unlinkSync(join(inside, temp)));
        throw err;
      }
    });
  }

  /**
   * A large file's name no longer holds it (deleted, or renamed: `LocalFileOps` carries the digests
   * to the new name first): its record goes, or `.rxfer/sums` would grow with every name ever used.
   * (A small file's log line drops out when its folder's log is compacted.)
   */
  async forget(name: string): Promise<void> {
    this.recent.delete(name);
    // In the records' folder checked (inServerFolderSync): through one swapped for a link, an unlink
    // by path deleted a file outside the root (hostile pass q). None kept, or the folder is not the one
    // checked: nothing of the root's to remove.
    quietly(() => inServerFolderSync(this.folder, (inside) => unlinkSync(join(inside, this.recordFile(name)))));
  }

  /** The digest for an open file: remembered if still valid, otherwise computed (once) and remembered. */
  async digestOf(name: string, handle: FileHandle, stats: SteadyVersion, algorithm: HashAlgorithm): Promise<string> {
    const known = await this.lookup(name, stats, algorithm);
    if (known !== undefined) return known;
    const key = `${algorithm} ${stats.size} ${stats.mtimeMs} ${stats.ino} ${stats.ctimeMs} ${name}`;
    let hashing = this.hashingNow.get(key);
    if (hashing === undefined) {
      hashing = this.hashing.run(() => hashHandle(handle, stats.size, algorithm)).finally(() => this.hashingNow.delete(key));
      this.hashingNow.set(key, hashing);
    }
    const digest = await hashing;
    // Recorded only if the file is the version `stats` saw after the hash too (see steadyAcross); a
    // look that fails costs only the record, never the download.
    const after = await handle.stat().catch(() => undefined);
    const steady = after && steadyAcross(stats, after);
    if (steady) await this.rememberHashed(name, steady, algorithm, digest).catch(() => undefined);
    return digest;
  }

  /**
   * Records the digest of a file the server hashed as it found it (a DOWNLOAD, a STAT; not a commit,
   * whose worker records what it wrote), read whole with nothing changed meanwhile (steadyAcross),
   * so that LISTs show it from then on: a `get -r` run again over files put there by other means
   * compares instead of fetching each again. A version changed
   * in the last SETTLED_MS is recorded only beside a record of its own (a large file's commit, in
   * another algorithm: rxfer's own version). A small one is not even then: hashing it again costs less
   * than a look at its folder's log on every download of a file just uploaded. A small file whose
   * log has the digest already (most downloads: the LIST before read the log) costs no system call.
   */
  async rememberHashed(name: string, version: SteadyVersion, algorithm: HashAlgorithm, digest: string): Promise<void> {
    if (version.size <= SMALL_FILE_BYTES) {
      if (!settled(version) || this.logs.hasInMemory(name, version, algorithm, digest)) return;
      if ((await this.lookup(name, version, algorithm)) === digest) return;
    } else {
      const known = (await this.read(name, version))?.digests;
      if (known?.[algorithm] === digest || (known === undefined && !settled(version))) return;
    }
    await this.remember(name, version, algorithm, digest, true);
  }
}

/** Runs at most `limit` tasks at once; the others wait their turn, first come first served. */
class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter (running stays the same), or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/** Digest of the first `size` bytes of an open file (of fewer if it was truncated meanwhile: what a reader sees). */
export const hashHandle = async (handle: FileHandle, size: number, algorithm: HashAlgorithm): Promise<string> =>
  (await hashUpTo(handle, size, algorithm)).hash.hex();
