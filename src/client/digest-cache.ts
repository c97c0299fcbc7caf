import { type BigIntStats, type Stats, closeSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { compareSegments } from './name-order';
import { type FileVersion, sameVersion } from './local-io';

/**
 * The client's memory of its own files' digests, so that an identical re-run of `put -r` reads no
 * file (issue 20: it hashed every local file again, 76 µs a file, most of a re-run's time). What
 * git's index and rsync's quick check rely on, made strict:
 *
 * - A record is one file's state — size, mtime, ctime (nanoseconds), inode and device — and the digest
 *   of its bytes in that state. It is used only while the file's `lstat` still gives exactly that state.
 *   A write moves ctime, and ctime cannot be set back by anyone (touch -d sets mtime, and moves
 *   ctime to now); a file replaced by another has another inode or ctime. The exception, shared with
 *   git's index and rsync's quick check and told in the README: stores through a shared writable
 *   memory map after its first write fault leave the times alone (`--checksum` reads every file).
 * - A write in the same clock tick as the one before it can leave ctime as it was (file times come
 *   from a coarse clock, and FAT or ext3 keep whole seconds). So a state is recorded only when its
 *   ctime is RACY_MARGIN_MS older than the moment it was seen; a file changed since then has a later
 *   ctime. A state that was not old enough is simply hashed again next time (git's "racily clean").
 * - A digest is recorded only once the file's state after its bytes were read is the state seen
 *   before: nothing changed in between (see `record`).
 *
 * One cache per local folder and hash algorithm, a text file of one line per file in the order of
 * the walk (compareSegments), read alongside the walk as the server's listing is (ListingCursor): one
 * record held at a time, never the whole tree (issue 17). Each run writes the records of what it saw
 * to a new file that replaces the old one at the end, so files removed from the tree drop out.
 * Everything here is an optimisation: a cache that cannot be read or written is no cache, never a
 * failure, and a wrong digest in it can only make a file look changed (it is sent) — except in a
 * cache someone tampered with, which is the user's own folder (0700) or `--checksum`'s reason to be.
 */

/** See above: longer than any file system's timestamp granularity (FAT's 2 s) and one clock tick. */
export const RACY_MARGIN_MS = 2_000;

const HEADER = 'rxfer-digest-cache 1';

/** Lines written at once: a few system calls for a tree of thousands. */
const FLUSH_BYTES = 64 * 1024;
const READ_BYTES = 64 * 1024;

/** A file's state as the cache compares it: local-io's FileVersion, and the device. */
export interface FileState extends FileVersion {
  readonly dev: bigint;
}

/** Field by field: a spread of versionOf's object and a WeakMap of keys cost ≈ 4 µs a file at the CLI's baseline tier (issue 20). */
export const stateOf = (stats: BigIntStats): FileState => ({ size: stats.size, mtimeNs: stats.mtimeNs, ctimeNs: stats.ctimeNs, ino: stats.ino, dev: stats.dev });

const sameState = (a: FileState, b: FileState): boolean => sameVersion(a, b) && a.dev === b.dev;

/**
 * A state worth a record: old enough (see RACY_MARGIN_MS), and with a ctime finer than a millisecond.
 * A file system that keeps whole seconds (FAT, ext3, ext4 with small inodes, HFS+) can give two
 * different files the very same state — two clones of one disk image, each written in the same
 * second, mounted in turn at the same place — so its files are always read, as without a cache.
 */
export const recordable = (state: FileState, notAfterNs: bigint): boolean => state.ctimeNs < notAfterNs && state.ctimeNs % 1_000_000n !== 0n;

/** Where caches live: $RXFER_CACHE_DIR, else $XDG_CACHE_HOME/rxfer, else ~/.cache/rxfer. */
export const defaultCacheDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env.RXFER_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rxfer');

/** A record as read: the state as its decimal fields (compared as text, not parsed), and the line itself (with its line break). */
export interface CachedRecord {
  readonly name: string;
  readonly stateKey: string;
  readonly digest: string;
  readonly line: string;
}

/**
 * `size mtimeNs ctimeNs ino dev`, in decimal: how a state is written and compared. Made afresh each
 * time (a file sent makes it twice, for `find` and `recordRead`): keeping it in a WeakMap by state
 * cost more than the five BigInts in decimal (≈ 1.5 µs) in a re-run, where each state is looked up once.
 */
const stateKeyOf = (state: FileState): string => `${state.size} ${state.mtimeNs} ${state.ctimeNs} ${state.ino} ${state.dev}`;

/** `digest size mtimeNs ctimeNs ino dev name`: the name last, as it may hold spaces. */
const lineOf = (name: string, state: FileState, digest: string): string => `${digest} ${stateKeyOf(state)} ${name}\n`;

/**
 * A line as `lineOf` writes it. Splitting at the spaces by hand and checking each field was measured
 * slower than this match, which runs as native code (issue 20).
 */
const LINE = /^([0-9a-f]{16,128}) (\d+ \d+ \d+ \d+ \d+) (.+)\n$/;

/** A line as `lineOf` wrote it (with its line break), else undefined. */
const parseLine = (line: string): CachedRecord | undefined => {
  const m = LINE.exec(line);
  return m ? { digest: m[1]!, stateKey: m[2]!, name: m[3]!, line } : undefined;
};

/** The previous run's records, read forward as the walk asks for names in its order. */
class RecordCursor {
  /** Whole lines read and decoded, each with its line break; the next begins at `at`. */
  private lines = '';
  private at = 0;
  /** Bytes read after the last line break: the start of a line, decoded once it is whole. */
  private partial: Buffer = Buffer.alloc(0);
  private current: CachedRecord | undefined;
  private done = false;

  constructor(private fd: number | undefined) {
    if (fd === undefined) this.done = true;
  }

  /** The first line (with its line break), read before any record. */
  header(): string | undefined {
    return this.nextLine();
  }

  /** The record for `name` if the cache has one; names must come in walk order, each once. */
  find(name: string): CachedRecord | undefined {
    for (;;) {
      if (this.current === undefined) {
        const line = this.nextLine();
        if (line === undefined) return undefined;
        this.current = parseLine(line);
        if (this.current === undefined) continue;
      }
      const record = this.current;
      // In a re-run names come as the cache has them: most finds are this first test. The record is
      // then used up, so that the next find need not compare it with a later name (compareSegments).
      if (record.name === name) {
        this.current = undefined;
        return record;
      }
      // The cache is past `name` (it has no record of it): keep the record for a later name.
      if (compareSegments(record.name, name) > 0) return undefined;
      this.current = undefined;
    }
  }

  /** Never throws: a cache is an optimisation, and a close that fails loses nothing. */
  close(): void {
    try {
      if (this.fd !== undefined) closeSync(this.fd);
    } catch {
      // A descriptor only read from: nothing to lose.
    }
    this.fd = undefined;
    this.done = true;
    // What was read ahead is dropped too: a closed cache answers nothing.
    this.lines = '';
    this.at = 0;
    this.partial = Buffer.alloc(0);
    this.current = undefined;
  }

  /**
   * The next line, with its line break; a last line without one is no line. Each chunk is decoded once,
   * up to its last line break (a chunk can end inside a name's UTF-8 character, never inside a line
   * break), and cut into lines as text: a Buffer's indexOf, toString and subarray for every line cost
   * ≈ 0.4 µs a line, against 0.1.
   */
  private nextLine(): string | undefined {
    for (;;) {
      const end = this.lines.indexOf('\n', this.at);
      if (end >= 0) {
        const line = this.lines.slice(this.at, end + 1);
        this.at = end + 1;
        return line;
      }
      if (this.done) return undefined;
      const chunk = Buffer.allocUnsafe(READ_BYTES);
      const n = readSync(this.fd!, chunk, 0, READ_BYTES, null);
      if (n === 0) {
        this.close();
        continue;
      }
      const bytes = this.partial.length === 0 ? chunk.subarray(0, n) : Buffer.concat([this.partial, chunk.subarray(0, n)]);
      const whole = bytes.lastIndexOf(0x0a) + 1;
      this.lines = bytes.toString('utf8', 0, whole);
      this.at = 0;
      this.partial = bytes.subarray(whole);
    }
  }
}

/**
 * One run's use of the cache of `localDir`: `find` answers from the previous run's records, `record`
 * writes this run's, and `commit` puts them in place of the old ones. Files are looked up and given
 * their places (`place`) in walk order; their records may come later (a digest is known once a file
 * is sent), so they are written in that order as soon as every earlier place is settled.
 */
export class DigestCache {
  private readonly old: RecordCursor;
  private out: number | undefined;
  private readonly tempPath: string;
  private buffered = '';
  private readonly settled = new Map<number, string>();
  private placed = 0;
  private written = 0;

  private constructor(
    private readonly path: string,
    header: string,
    old: number | undefined,
    private readonly racyMarginNs: bigint,
  ) {
    this.old = new RecordCursor(old);
    try {
      if (this.old.header() !== `${header}\n`) this.old.close();
    } catch {
      this.old.close();
    }
    this.tempPath = `${path}.${process.pid}.tmp`;
    try {
      this.out = openSync(this.tempPath, 'w', 0o600);
      this.buffered = `${header}\n`;
    } catch {
      this.out = undefined;
    }
  }

  /**
   * The cache of `localDir`'s files under `algorithm`. `trustOld: false` (`--checksum`): every file is
   * read again, and the cache only written. Never throws: a cache it cannot use is none.
   */
  static open(localDir: string, algorithm: string, options: { dir?: string; trustOld?: boolean; racyMarginMs?: number } = {}): DigestCache | undefined {
    try {
      // The real path: the same tree by any name has one cache.
      const root = realpathSync(localDir);
      const folder = join(options.dir ?? defaultCacheDir(), 'digests');
      mkdirSync(folder, { recursive: true, mode: 0o700 });
      const stats = lstatSync(folder);
      if (!stats.isDirectory() || !onlyMine(stats)) return undefined;
      const key = createHash('sha256').update(`${algorithm}\0${root}`).digest('hex').slice(0, 32);
      const path = join(folder, `${key}.${algorithm}`);
      sweepStale(folder);
      let old: number | undefined;
      if (options.trustOld !== false) {
        try {
          old = openSync(path, 'r');
          const stats = fstatSync(old);
          if (!stats.isFile() || !onlyMine(stats)) {
            closeSync(old);
            old = undefined;
          }
        } catch {
          old = undefined;
        }
      }
      return new DigestCache(path, `${HEADER} ${algorithm} ${JSON.stringify(root)}`, old, BigInt(options.racyMarginMs ?? RACY_MARGIN_MS) * 1_000_000n);
    } catch {
      return undefined;
    }
  }

  /** The record of `name` (its `digest`) if `state` is exactly the state it was recorded for. */
  find(name: string, state: FileState): CachedRecord | undefined {
    try {
      const found = this.old.find(name);
      return found !== undefined && found.stateKey === stateKeyOf(state) ? found : undefined;
    } catch {
      this.old.close();
      return undefined;
    }
  }

  /** The next file's place in this run's records (walk order). */
  place(): number {
    return this.placed++;
  }

  /** Place `at` has no record (a file that failed, or whose digest is not known). */
  skip(at: number): void {
    this.settle(at, '');
  }

  /**
   * Records `digest` for `name` at place `at` if the file at `path` is still in `state`, the state seen
   * at `seenAtNs` (wall clock, before its bytes were read for that digest), and `state` was already
   * older than the racy margin then. A file changed since `seenAtNs` has another ctime, so "still in
   * `state`" means the bytes read were the bytes of that state.
   */
  record(at: number, name: string, path: string, state: FileState, seenAtNs: bigint, digest: string): void {
    let still = false;
    try {
      still = sameState(stateOf(lstatSync(path, { bigint: true })), state);
    } catch {
      still = false;
    }
    this.settle(at, still ? this.lineFor(name, state, seenAtNs, digest) : '');
  }

  /**
   * `record` for bytes known to have been read in `state`: checked on the descriptor they were read
   * from (readWhole compares its fstat before and after the read), so no second lstat is needed.
   */
  recordRead(at: number, name: string, state: FileState, seenAtNs: bigint, digest: string): void {
    this.settle(at, this.lineFor(name, state, seenAtNs, digest));
  }

  /** Keeps a record `find` answered with at place `at` (no bytes were read: nothing to check again). */
  carry(at: number, found: CachedRecord): void {
    this.settle(at, found.line);
  }

  /** Replaces the previous run's records with this run's (whatever was recorded, even if the run failed). */
  commit(): void {
    this.old.close();
    if (this.out === undefined) return;
    try {
      this.flush(true);
      closeSync(this.out);
      this.out = undefined;
      renameSync(this.tempPath, this.path);
    } catch {
      this.abandon();
    }
  }

  /** The line of a record worth keeping, or '' (a state too fresh or too coarse, a name with a line break). */
  private lineFor(name: string, state: FileState, seenAtNs: bigint, digest: string): string {
    return !name.includes('\n') && !name.includes('\r') && recordable(state, seenAtNs - this.racyMarginNs) ? lineOf(name, state, digest) : '';
  }

  private settle(at: number, line: string): void {
    // Most places settle in order (files are sent and answered in walk order): no need to hold them.
    if (at === this.written && this.settled.size === 0) {
      this.buffered += line;
      this.written++;
      this.flush(false);
      return;
    }
    this.settled.set(at, line);
    while (this.settled.has(this.written)) {
      this.buffered += this.settled.get(this.written)!;
      this.settled.delete(this.written++);
    }
    this.flush(false);
  }

  private flush(all: boolean): void {
    if (this.out === undefined || (!all && this.buffered.length < FLUSH_BYTES)) return;
    try {
      const data = Buffer.from(this.buffered, 'utf8');
      this.buffered = '';
      let done = 0;
      while (done < data.length) done += writeSync(this.out, data, done);
    } catch (err) {
      this.abandon();
      if (all) throw err;
    }
  }

  private abandon(): void {
    try {
      if (this.out !== undefined) closeSync(this.out);
      rmSync(this.tempPath, { force: true });
    } catch {
      // Nothing more to give back: a temporary file left is swept by a later run.
    }
    this.out = undefined;
    this.buffered = '';
  }
}

/**
 * Written by this user alone (as ssh asks of ~/.ssh): a record planted by someone else could make a
 * changed file look like the server's copy, and it would not be sent.
 */
const onlyMine = (stats: Stats): boolean => {
  const uid = process.getuid?.();
  return (uid === undefined || stats.uid === uid) && (stats.mode & 0o022) === 0;
};

/** A run killed before its commit leaves its temporary file; one a day old is nobody's. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

/** Every run rewrites its folder's cache; one untouched this long is of a tree gone or forgotten. */
const STALE_CACHE_MS = 30 * 24 * 3600 * 1000;

const sweepStale = (folder: string): void => {
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    const stats = statSync(path, { throwIfNoEntry: false });
    const maxAge = name.endsWith('.tmp') ? STALE_TEMP_MS : STALE_CACHE_MS;
    if (stats?.isFile() && Date.now() - stats.mtimeMs > maxAge) rmSync(path, { force: true });
  }
};
