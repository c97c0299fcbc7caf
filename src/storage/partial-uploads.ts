import { createHash } from 'node:crypto';
import { type Stats, close, closeSync, constants, fstat, fstatSync, ftruncate, lstatSync, open as openCallback, openSync, unlinkSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { HashAlgorithm, RunningHash, startHash } from '../integrity/hash-algorithm';
import { hashPrefix, readerOf } from '../integrity/hash-prefix';
import type { ResumePoint } from '../protocol/command';
import type { PartialUpload } from './storage-adapter';
import { serverFolderOf, storageError } from './storage-errors';
import { READ_FLAGS, assertOpenedAt, inServerFolderSync, quietly } from './opened-paths';

/** What is written beside a partial upload's data, so that it can be found, counted and expired. */
interface PartialManifest {
  readonly name: string;
  readonly size: number;
  readonly startedAt: string;
}

/** The data file of a partial upload, open for writing from `offset` on. */
export interface ClaimedPartial {
  readonly path: string;
  /** A plain descriptor: the staged write's stream takes it over and is the one to close it. */
  readonly fd: number;
  readonly offset: number;
  /** Hash state after the first `offset` bytes (a fresh hash when offset is 0). */
  readonly hash: RunningHash;
  /**
   * Whether the manifest is on disk. A fresh partial's is written while the data already flows (the
   * socket waits only for the data file); a partial whose manifest failed is not kept.
   */
  readonly recorded: Promise<boolean>;
  /** The upload ended (committed, kept or discarded): another connection may claim the name. */
  release(): void;
  /** The data is gone (committed under its name or discarded): drop the manifest too. */
  forget(): Promise<void>;
}

/** The last prefix hashed by a probe, reused when the upload that follows resumes right there. */
interface HashedPrefix {
  readonly bytes: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly hash: RunningHash;
}

const MAX_REMEMBERED_PREFIXES = 16;

/** A resumed partial's manifest is the one written when it began. */
const ALREADY_RECORDED = Promise.resolve(true);

const openFd = promisify(openCallback);
const fstatFd = promisify(fstat);
const ftruncateFd = promisify(ftruncate);
const closeFd = promisify(close);

const FRESH_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * A manifest is read never through a link, and O_NONBLOCK: a FIFO planted under its name reads as
 * nothing (no manifest) instead of holding a thread-pool thread for good (hostile pass q).
 */
const MANIFEST_READ = { encoding: 'utf8', flag: READ_FLAGS } as const;

/**
 * Opens a new file at `path` (O_EXCL, O_NOFOLLOW), never an old one truncated: the old path may be a
 * second link to a committed file (see init), and O_TRUNC would empty that file and write this upload
 * into it; nor through a link, nor a FIFO planted under the name (an open that would wait for a reader,
 * on the main thread: hostile pass p). What is there is unlinked first (the link or FIFO itself).
 * `gone` is told once nothing old is there (before the open, as the bytes are gone even if the open
 * then fails). The open comes first: nearly always nothing is there, and an unlink that fails with
 * ENOENT costs a thrown error each (≈ 50 µs of the main thread, issue 20).
 */
const openFresh = (path: string, flags: number, gone: () => void): number => {
  try {
    const fd = openSync(path, flags, 0o644);
    gone();
    return fd;
  } catch (err) {
    try {
      unlinkSync(path);
    } catch (unlinkErr) {
      if ((unlinkErr as NodeJS.ErrnoException).code !== 'ENOENT') throw unlinkErr;
    }
    gone();
    // Nothing was in the way: the open's own failure (no space, no permission) stands.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return openSync(path, flags, 0o644);
  }
};

/**
 * Writes a kept upload's manifest as a new file (openFresh); false if it could not be written whole
 * (the upload is then not kept). A manifest cut short by a full disk reads as none (parseManifest).
 */
const writeManifest = (path: string, manifest: PartialManifest): boolean => {
  try {
    const fd = openFresh(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, () => undefined);
    try {
      writeFileSync(fd, JSON.stringify(manifest));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch {
    return false;
  }
};

/**
 * Interrupted uploads kept for RESUME, in `<root>/.rxfer/partials/`: `<id>` holds the bytes that
 * arrived, `<id>.json` the name and declared size (the id is the SHA-256 of the storage name). Both
 * are plain files, so resume survives a restart of the server; nothing lives only in memory except
 * which partials are being written right now, which dies with the process anyway.
 *
 * The prefix is never trusted from bookkeeping: every probe and every resume hashes the bytes that
 * are on disk now, so a partial that was damaged or tampered with fails the client's comparison.
 */
export class PartialUploads {
  private readonly folder: string;
  private readonly writing = new Set<string>();
  private readonly hashed = new Map<string, HashedPrefix>();
  /** Ids with a data file or manifest on disk, so a plain upload can tell without a syscall. */
  private readonly kept = new Set<string>();

  constructor(realRoot: string) {
    this.folder = join(realRoot, '.rxfer', 'partials');
  }

  /**
   * Makes the folder and repairs what a crash can leave: a create-only commit links the partial to
   * its name and then unlinks the partial, so a kill between the two leaves the data file as a
   * second link to a committed file. Writing through that path would change the committed file
   * (issue 14: later uploads of the name went straight into it), so such links are dropped here,
   * with their manifests; the committed file keeps its data.
   */
  async init(): Promise<void> {
    await mkdir(this.folder, { recursive: true });
    for (const id of await this.ids()) {
      const data = await lstat(this.dataPath(id)).catch(() => undefined);
      if (data && (!data.isFile() || data.nlink > 1)) {
        quietly(() => this.removeData(id));
        await this.forget(id);
        continue;
      }
      this.kept.add(id);
    }
  }

  /** Whether an interrupted upload of `name` may be kept (false: certainly none; no syscall). */
  mayHold(name: string): boolean {
    return this.kept.has(this.idOf(name));
  }

  private idOf(name: string): string {
    return createHash('sha256').update(name).digest('hex');
  }

  private dataPath(id: string): string {
    return join(this.folder, id);
  }

  private manifestPath(id: string): string {
    return join(this.folder, `${id}.json`);
  }

  private busy(name: string): RxferError {
    return new RxferError('BUSY', `${name} is being uploaded on another connection right now; resume once that upload ends`);
  }

  /** The kept bytes of `name`'s interrupted upload and their digest, hashed from disk now. */
  async probe(name: string, algorithm: HashAlgorithm): Promise<PartialUpload | undefined> {
    const id = this.idOf(name);
    if (this.writing.has(id)) throw this.busy(name);
    // In the folder opened and checked (a swapped one must not have a file outside hashed and its
    // digest told), and O_NONBLOCK: a FIFO planted under the name opens at once and is refused below.
    let fd: number;
    try {
      fd = inServerFolderSync(this.folder, (inside) => openSync(join(inside, id), READ_FLAGS));
    } catch (err) {
      // The kept uploads' folder itself unusable (removed, swapped for a link): not "nothing is kept",
      // which would be untrue once it is back (hostile pass u); said as the server's failure.
      if (serverFolderOf(err) !== undefined) throw storageError(err, 'look for the kept upload of', name);
      return undefined;
    }
    try {
      const stats = fstatSync(fd);
      // A second link is a committed file left by a crash (see init): nothing to resume from.
      if (!stats.isFile() || stats.size === 0 || stats.nlink > 1) return undefined;
      const hash = await hashPrefix(readerOf(fd), stats.size, algorithm);
      if (!hash) return undefined;
      this.rememberPrefix(id, { bytes: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, hash });
      return { bytes: stats.size, digest: hash.hex() };
    } finally {
      closeSync(fd);
    }
  }

  private rememberPrefix(id: string, prefix: HashedPrefix): void {
    this.hashed.delete(id);
    this.hashed.set(id, prefix);
    if (this.hashed.size > MAX_REMEMBERED_PREFIXES) this.hashed.delete(this.hashed.keys().next().value!);
  }

  /**
   * Claims `name`'s partial upload for an upload of `size` bytes. Without `resume` it starts empty.
   * With `resume` the kept data must hold at least `resume.offset` bytes whose digest (in `algorithm`) is
   * `resume.digest` (else RESUME_MISMATCH); anything beyond the offset is cut off. Returns undefined
   * for a fresh upload when another connection is writing this name (it then stages elsewhere).
   * `dropped` is told how many kept bytes go on the way (deleted, cut, or replaced), for quotas.
   */
  async claim(name: string, size: number, algorithm: HashAlgorithm, resume?: ResumePoint, dropped: (bytes: number) => void = () => undefined): Promise<ClaimedPartial | undefined> {
    const id = this.idOf(name);
    if (this.writing.has(id)) {
      if (resume) throw this.busy(name);
      return undefined;
    }
    this.writing.add(id);
    const release = () => {
      this.writing.delete(id);
    };
    try {
      const claimed = resume ? await this.reopen(id, name, resume, algorithm, dropped) : await this.create(id, name, size, algorithm, dropped);
      // A manifest still being written would outlive an unlink issued now.
      const forget = () => claimed.recorded.then(() => this.forget(id));
      return { ...claimed, release, forget };
    } catch (err) {
      release();
      throw err;
    }
  }

  private async create(id: string, name: string, size: number, algorithm: HashAlgorithm, dropped: (bytes: number) => void): Promise<Omit<ClaimedPartial, 'release' | 'forget'>> {
    this.hashed.delete(id);
    const path = this.dataPath(id);
    // A kept upload of the name is replaced (PROTOCOL.md: a plain upload starts over): its bytes go.
    const replaced = this.kept.has(id) && (await this.counted(id)) ? ((await lstat(path).catch(() => undefined))?.size ?? 0) : 0;
    const manifest: PartialManifest = { name, size, startedAt: new Date().toISOString() };
    // Synchronous, the manifest and the data file alike, in the kept uploads' folder opened and shown
    // to be it (inServerFolderSync: one swapped for a link must not have either made, or an old file
    // removed, outside the root; hostile pass p): calls of a few µs that never wait for a device (no
    // fsync: a manifest lost to a crash costs only that upload's resume), where each thread-pool round
    // trip cost the main thread more than its call (issue 20; the socket waits for the open).
    // `recorded` stays a promise: callers wait for it before they drop or keep the upload.
    return inServerFolderSync(this.folder, (inside) => {
      const recorded = Promise.resolve(writeManifest(join(inside, `${id}.json`), manifest));
      try {
        const fd = openFresh(join(inside, id), FRESH_FLAGS, () => replaced > 0 && dropped(replaced));
        this.kept.add(id);
        return { path, fd, offset: 0, hash: startHash(algorithm), recorded };
      } catch (err) {
        quietly(() => unlinkSync(join(inside, `${id}.json`)));
        throw err;
      }
    });
  }

  /**
   * Why a kept upload could not be opened: its folder unusable (removed, swapped for a link), the
   * server's failure (STORAGE_FAILED naming the folder, as for any upload then), or else nothing kept.
   */
  private keptGone(name: string, mismatch: (why: string) => RxferError): RxferError {
    try {
      // Only the folder's own open can fail here (marked serverFolder: storageError names the folder).
      inServerFolderSync(this.folder, () => undefined);
    } catch (err) {
      return storageError(err, 'resume', name);
    }
    return mismatch('no interrupted upload of it is kept');
  }

  private async reopen(id: string, name: string, { offset, digest }: ResumePoint, algorithm: HashAlgorithm, dropped: (bytes: number) => void): Promise<Omit<ClaimedPartial, 'release' | 'forget'>> {
    const path = this.dataPath(id);
    const mismatch = (why: string) => new RxferError('RESUME_MISMATCH', `cannot resume ${name} at ${offset} bytes: ${why}; upload it from the start`, { offset });
    const fd = await openFd(path, constants.O_RDWR | constants.O_NOFOLLOW).catch(() => undefined);
    if (fd === undefined) throw this.keptGone(name, mismatch);
    try {
      assertOpenedAt(fd, path);
    } catch {
      await closeFd(fd).catch(() => undefined);
      throw this.keptGone(name, mismatch);
    }
    let kept = 0;
    try {
      const stats = await fstatFd(fd);
      kept = stats.size;
      if (stats.nlink > 1) throw mismatch('the kept file is linked to a committed file');
      if (stats.size < offset) throw mismatch(`only ${stats.size} bytes are kept`);
      // The probe's state is handed over, not copied: the resumed upload is about to change the file.
      const known = this.hashed.get(id);
      this.hashed.delete(id);
      const reusable =
        known && known.hash.algorithm === algorithm && known.bytes === offset && stats.size === offset && known.mtimeMs === stats.mtimeMs && known.ino === stats.ino;
      const hash = reusable ? known.hash : await hashPrefix(readerOf(fd), offset, algorithm);
      if (!hash || hash.hex() !== digest) throw mismatch('the kept bytes do not match the digest given for them');
      if (stats.size > offset) {
        await ftruncateFd(fd, offset);
        dropped(stats.size - offset);
      }
      return { path, fd, offset, hash, recorded: ALREADY_RECORDED };
    } catch (err) {
      await closeFd(fd);
      // Kept bytes the uploader cannot use are not worth keeping: its next upload starts from 0.
      if (err instanceof RxferError && err.code === 'RESUME_MISMATCH') {
        const counted = await this.counted(id);
        let gone = false;
        try {
          gone = this.removeData(id) === 'removed';
        } catch {
          // Stays, not counted as freed.
        }
        await this.forget(id);
        if (gone && counted) dropped(kept);
      }
      throw err;
    }
  }

  /**
   * Removes the kept data file `id` ('absent' if it was gone already; any other failure throws), in
   * the folder opened and checked (inServerFolderSync): through the folder swapped for a link, an
   * unlink by path deleted a file of that name outside the root (hostile pass p). Synchronous, as
   * the files are made (see create).
   */
  private removeData(id: string): 'removed' | 'absent' {
    try {
      inServerFolderSync(this.folder, (inside) => unlinkSync(join(inside, id)));
      return 'removed';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
      throw err;
    }
  }

  private async forget(id: string): Promise<void> {
    this.hashed.delete(id);
    this.kept.delete(id);
    // Synchronously, where it was written (see create).
    quietly(() => inServerFolderSync(this.folder, (inside) => unlinkSync(join(inside, `${id}.json`))));
  }

  /**
   * Whether a kept upload's bytes count against a quota: only while its manifest names it, as
   * bytesUnder counts them. A data file without one (the second link a create-only commit could not
   * unlink, a manifest never written) frees nothing when it goes: the ledger never held it.
   */
  private async counted(id: string): Promise<boolean> {
    return (await readFile(this.manifestPath(id), MANIFEST_READ).then(parseManifest, () => undefined)) !== undefined;
  }

  /**
   * Deletes the kept upload of `name` (not one being written right now); returns the bytes it freed
   * (see counted). A data file that cannot be deleted stays kept, and the error says so.
   */
  async discard(name: string): Promise<number> {
    const id = this.idOf(name);
    if (this.writing.has(id)) return 0;
    // Held as if written while it goes: a resume or an upload of the name claiming it between the lstat
    // and the unlink had its data file deleted under it, or its bytes counted freed twice (hostile pass,
    // 2026-12-05). Such a claim now waits its turn: BUSY for a resume, a staging file of its own otherwise.
    this.writing.add(id);
    try {
      // DELETE asks for every name: a name with nothing kept costs one lstat, through the folder
      // opened and checked. By path it went through a folder swapped for a link, and with the folder
      // unusable a DELETE said NOT FOUND of a name whose kept upload is there once it is back.
      let data: Stats | undefined;
      try {
        data = inServerFolderSync(this.folder, (inside) => lstatSync(join(inside, id)));
      } catch (err) {
        if (serverFolderOf(err) !== undefined || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(err, 'delete the kept upload of', name);
      }
      if (!data) return 0;
      const counted = await this.counted(id);
      try {
        this.removeData(id);
      } catch (err) {
        throw storageError(err, 'delete the kept upload of', name);
      }
      await this.forget(id);
      return counted ? data.size : 0;
    } finally {
      this.writing.delete(id);
    }
  }

  /** Deletes partials with no write for `maxAgeMs` (orphans too); returns the bytes freed. */
  async expire(maxAgeMs: number, now = Date.now()): Promise<number> {
    let freed = 0;
    for (const id of await this.ids()) {
      if (this.writing.has(id)) continue;
      this.writing.add(id); // as in discard: no claim while it goes
      try {
        const data = await lstat(this.dataPath(id)).catch(() => undefined);
        const manifest = await lstat(this.manifestPath(id)).catch(() => undefined);
        const lastWrite = Math.max(data?.mtimeMs ?? 0, manifest?.mtimeMs ?? 0);
        if (now - lastWrite < maxAgeMs) continue;
        const counted = await this.counted(id);
        // One that cannot be deleted stays, counted, and is tried again at the next sweep.
        try {
          this.removeData(id);
        } catch {
          continue;
        }
        await this.forget(id);
        if (counted) freed += data?.size ?? 0;
      } finally {
        this.writing.delete(id);
      }
    }
    return freed;
  }

  /**
   * Bytes kept for names under `prefix` ('' for all): partial uploads count against quotas. One being
   * written right now is left out: the upload in flight holds its whole size reserved in the quota
   * ledger (kept prefix included), and counted here too it would count twice after a remeasure.
   */
  async bytesUnder(prefix: string): Promise<number> {
    let total = 0;
    for (const id of await this.ids()) {
      if (this.writing.has(id)) continue;
      const manifest = await readFile(this.manifestPath(id), MANIFEST_READ).then(parseManifest, () => undefined);
      if (!manifest || (prefix !== '' && !manifest.name.startsWith(prefix + '/'))) continue;
      total += (await lstat(this.dataPath(id)).catch(() => undefined))?.size ?? 0;
    }
    return total;
  }

  private async ids(): Promise<string[]> {
    const entries = await readdir(this.folder).catch(() => [] as string[]);
    return [...new Set(entries.map((entry) => entry.replace(/\.json$/, '')))];
  }
}

/**
 * A manifest as create() writes it, or undefined for one a crash or a full disk cut short (it is
 * written without fsync): such a kept upload is skipped as if it had no manifest, where a parse
 * error would fail every quota check of the root until the expiry sweep removed it.
 */
const parseManifest = (text: string): PartialManifest | undefined => {
  try {
    const parsed = JSON.parse(text) as Partial<PartialManifest> | null;
    return typeof parsed?.name === 'string' ? (parsed as PartialManifest) : undefined;
  } catch {
    return undefined;
  }
};
