import { statfsSync } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferError, toRxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { DigestIndex, SMALL_FILE_BYTES } from './digest-index';
import { LocalStagedWrite, StagingServices } from './local-staged-write';
import { NameLocks } from './name-locks';
import { markCleanStop, prepareStagingArea, stagingFolderOf } from './staging-area';
import { LocalSmallStagedWrite } from './local-small-staged-write';
import { SmallCommits } from './small-commits';
import { RootPaths } from './root-paths';
import { FileStatus, HashChoice, Jail, ListOptions, ListedFile, PartialUpload, ReadHandle, ReadOptions, StagedWrite, StorageAdapter, WriteOptions } from './storage-adapter';
import { PartialUploads } from './partial-uploads';
import { bufferHasPrefix, matchingPrefix } from '../integrity/hash-prefix';
import { DEFAULT_HASH, type HashAlgorithm, hashOf } from '../integrity/hash-algorithm';
import { LocalFileOps } from './local-file-ops';
import { isUnsynced, storageError, unsyncedWithMore } from './storage-errors';
import { walkListing } from './local-listing';
import { SortedFolders } from './sorted-folders';
import { READ_FLAGS, asSeenFromTheCheck, assertOpenedWithin, lookInOpenedFolder } from './opened-paths';
import { SmallReads } from './small-reads';
import { InMemoryBody } from '../io/in-memory-body';

const READ_HIGH_WATER_MARK = 1024 * 1024;
const SPACE_CHECK_MIN_BYTES = 1024 * 1024;
/**
 * Uploads this large stage as partial uploads that survive a lost connection. Smaller ones are not
 * worth a resume (sending them again costs less than asking) and keep the fast path.
 */
const RESUMABLE_FROM_BYTES = 1024 * 1024;

/** What a check that met a folder renamed or removed meanwhile answers (and a true refusal too). */
const RACING_FOLDER_CODES: ReadonlySet<string> = new Set(['NOT_FOUND', 'NAME_CONFLICT', 'NAME_INVALID']);

/**
 * Files in a folder on the local file system: the default adapter. Never writes to a real name
 * (staging + rename), never follows a symlink out of the root, never trusts a cached digest of a file
 * that changed behind its back.
 */
export class LocalFsStorage implements StorageAdapter {
  readonly kind = 'local';
  readonly resumableFromBytes = RESUMABLE_FROM_BYTES;
  private paths!: RootPaths;
  private partials!: PartialUploads;
  private digests!: DigestIndex;
  /** Commits, renames and deletes of one name take turns (see NameLocks). */
  private readonly locks = new NameLocks();
  /** Big folders' entries by name, kept between the pages of their listings. */
  private readonly sortedFolders = new SortedFolders();
  private smallCommits: SmallCommits | undefined;
  /** Small downloads' files are read in batches, off the main thread (SmallReads). */
  private readonly smallReads = new SmallReads();
  private ops!: LocalFileOps;
  private services!: StagingServices;

  constructor(private readonly root: string) {}

  async init(): Promise<void> {
    this.paths = await RootPaths.open(this.root);
    await prepareStagingArea(this.paths.realRoot);
    this.digests = new DigestIndex(this.paths.realRoot);
    // The worker that commits small files also writes their digests to the folders' logs.
    this.smallCommits = new SmallCommits(this.digests.logs.directory);
    // Records of files hashed on demand grow the logs too: compacted by the same worker.
    this.digests.onLogGrown = (log, folderName, size) => this.smallCommits!.compactLog(log, this.paths.pathOf(folderName as RemoteName), size);
    await this.digests.init();
    this.partials = new PartialUploads(this.paths.realRoot);
    await this.partials.init();
    this.services = { digests: this.digests, locks: this.locks, stagingFolder: stagingFolderOf(this.paths.realRoot) };
    this.ops = new LocalFileOps(this.paths, this.digests, this.locks);
  }

  async close(): Promise<void> {
    await this.smallReads.close();
    await this.smallCommits?.close();
    if (this.paths) await markCleanStop(this.paths.realRoot);
  }

  get realRoot(): string {
    return this.paths.realRoot;
  }

  stat(name: RemoteName, { jail = '', hash = DEFAULT_HASH }: Jail & HashChoice = {}): Promise<FileStatus> {
    return this.ops.stat(name, jail, hash);
  }

  /**
   * Deletes the file and any kept partial upload of that name (its bytes count against a quota the
   * user could not otherwise free before it expires); NOT_FOUND only if there is neither.
   */
  async remove(name: RemoteName, { jail = '' }: Jail = {}): Promise<number> {
    const removed = await this.ops.remove(name, jail).catch((err: unknown) => toRxferError(err));
    // With the file deleted, a kept upload that cannot be deleted stays, still counted, until it expires.
    const keptToo = () => this.partials.discard(name).catch(() => 0);
    if (typeof removed === 'number') return removed + (await keptToo());
    // Deleted, its folder not synced: the kept partial goes too, and the error counts both.
    if (isUnsynced(removed)) throw unsyncedWithMore(removed, 'removedBytes', await keptToo());
    const partial = removed.code === 'NOT_FOUND' ? await this.partials.discard(name) : 0;
    if (partial > 0) return partial;
    throw removed;
  }

  rename(from: RemoteName, to: RemoteName, { jail = '' }: Jail = {}): Promise<void> {
    return this.ops.rename(from, to, jail);
  }

  makeFolder(name: RemoteName, { jail = '' }: Jail = {}): Promise<void> {
    return this.ops.makeFolder(name, jail);
  }

  async sizeOf(name: RemoteName, { jail = '' }: Jail = {}): Promise<number | undefined> {
    const folder = await this.paths.existingFolderOf(name, jail);
    if (folder === undefined) return undefined;
    // Through the checked folder: a swap for a link must not let a quota count a file outside the root.
    const stats = await lookInOpenedFolder(folder, this.paths.pathOf(name)).catch((err: unknown) => Promise.reject(storageError(err, 'store', name)));
    return stats?.isFile() ? stats.size : undefined;
  }

  partialUpload(name: RemoteName, { hash = DEFAULT_HASH }: HashChoice = {}): Promise<PartialUpload | undefined> {
    return this.partials.probe(name, hash);
  }

  expirePartialUploads(maxAgeMs: number): Promise<number> {
    return this.partials.expire(maxAgeMs);
  }

  async openRead(name: RemoteName, { jail = '', from, hash = DEFAULT_HASH }: ReadOptions = {}): Promise<ReadHandle> {
    const folder = await this.paths.existingFolderOf(name, jail);
    if (folder === undefined) throw new RxferError('NOT_FOUND', `${name} does not exist`);
    // Opened by path (the small reads' worker too): a folder swapped for a link since its check gets one
    // answer, whatever the open found at the link's end (asSeenFromTheCheck).
    return this.readIn(name, this.paths.prefixOf(jail), from, hash).catch(async (err: unknown) => Promise.reject(await asSeenFromTheCheck(err, folder, name)));
  }

  private async readIn(name: RemoteName, within: string, from: ReadOptions['from'], hash: HashAlgorithm): Promise<ReadHandle> {
    const small = await this.smallReads.read(this.paths.pathOf(name), name, within);
    if (small !== undefined) {
      const { body, mtimeMs, steady } = small;
      // One read serves both the digest and the data, and the digest is recorded for the version read,
      // if nothing changed it meanwhile: a re-run of `get -r` over files put here by other means then
      // finds it in the listing, where before it fetched each of them again.
      const digest = hashOf(hash, body);
      if (steady) this.digests.rememberHashed(name, steady, hash, digest).catch(() => undefined);
      const offset = from && bufferHasPrefix(body, from, hash) ? from.offset : 0;
      return { file: { name, size: body.length, digest, mtimeMs }, stream: new InMemoryBody(body.subarray(offset)), offset };
    }
    // A larger file (closed again after its fstat): the same flags, since a FIFO may have taken its
    // name in between.
    const handle = await open(this.paths.pathOf(name), READ_FLAGS).catch((err) =>
      Promise.reject(storageError(err, 'read', name)),
    );
    try {
      assertOpenedWithin(handle.fd, within, name);
      const stats = await handle.stat();
      if (!stats.isFile()) throw new RxferError('NAME_CONFLICT', `${name} is a folder, not a file`);
      const digest = await this.digests.digestOf(name, handle, stats, hash);
      const offset = from && from.offset <= stats.size ? await matchingPrefix(handle, from, hash) : 0;
      // An empty range (a resume at the very end) cannot be expressed with start/end: stream nothing.
      const stream =
        offset === stats.size
          ? new InMemoryBody(Buffer.alloc(0))
          : handle.createReadStream({ start: offset, end: stats.size - 1, highWaterMark: READ_HIGH_WATER_MARK, autoClose: true });
      if (offset === stats.size) await handle.close();
      return { file: { name, size: stats.size, digest, mtimeMs: stats.mtimeMs }, stream, offset };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw storageError(err, 'read', name);
    }
  }

  /**
   * The checked folder for an upload's early look. Taken without the name's lock, as it nearly always
   * succeeds; but a folder renamed or removed by another client between the steps of the check fails
   * it with an answer that is not true of the name (a link, missing, in conflict: hostile pass n). So
   * a check that fails so is taken once more under the name's lock, which a RENAME or DELETE of a
   * folder above takes too: that answer stands (a link out of the root, a file in the way).
   */
  private async folderForNow(name: RemoteName, jail: string, target: string): Promise<string> {
    try {
      return await this.paths.folderFor(name, jail);
    } catch (err) {
      if (!(err instanceof RxferError) || !RACING_FOLDER_CODES.has(err.code)) throw err;
      return this.locks.with([target], () => {
        this.paths.forgetFolders();
        return this.paths.folderFor(name, jail);
      });
    }
  }

  async beginWrite(name: RemoteName, { size, createOnly, jail = '', measureReplaced = false, resume, hash = DEFAULT_HASH, onKeptDropped, admitReplaced }: WriteOptions): Promise<StagedWrite> {
    const target = this.paths.pathOf(name);
    // ADDFILE refuses an existing name before any data moves (link() checks again at commit), and so
    // does a large upload onto a folder. For a small replace the look is not worth its syscall: a
    // folder in the way fails the rename at commit with the same NAME_CONFLICT.
    // The folder is resolved and checked first, so the look below never sees outside the root.
    const folder = await this.folderForNow(name, jail, target);
    // It looks inside the folder that was checked, opened: by path, a folder swapped for a link since
    // its check had ADDFILE answer EXISTS for a name outside the root (hostile pass k). Through the
    // thread pool: the user's folder may be on a mount that stops answering, which must hold this
    // request only (its deadline answers it), never the main thread (hostile pass p; synchronous, as it
    // was, it froze the server). The free-space check is of the root's own file system: synchronous.
    if (createOnly || size >= SPACE_CHECK_MIN_BYTES) {
      // A folder swapped for a link since its cached check is checked again (as inFolderFor does at
      // commit): the answer is the one an uncached check gives (hostile pass r).
      const existing = await this.paths
        .inCheckedAgain(folder, () => this.folderForNow(name, jail, target), (where) => lookInOpenedFolder(where, target))
        .catch((err: unknown) => Promise.reject(storageError(err, 'store', name)));
      if (existing?.isDirectory()) throw new RxferError('NAME_CONFLICT', `${name} is a folder`);
      if (existing && createOnly) throw new RxferError('EXISTS', `${name} already exists`);
    }
    this.assertSpaceFor(size - (resume?.offset ?? 0), name);
    // Another connection writing the same name keeps its partial; this upload then stages apart.
    const inFolder = <T>(work: (where: string) => Promise<T>) => this.paths.inFolderFor(name, jail, work);
    const partial = size >= RESUMABLE_FROM_BYTES || resume ? await this.partials.claim(name, size, hash, resume, onKeptDropped) : undefined;
    if (partial) return LocalStagedWrite.fromPartial(name, target, partial, createOnly, this.services, measureReplaced, inFolder, admitReplaced);

    // Small files are committed in groups, off the main thread (SmallCommits); durability is the same.
    // Commits rename into the target's folder, which another process may have deleted while its
    // check was cached: inFolderFor makes it again.
    const staged =
      size <= SMALL_FILE_BYTES
        ? new LocalSmallStagedWrite(name, target, size, createOnly, this.smallCommits!, measureReplaced, inFolder, this.services, admitReplaced)
        : await LocalStagedWrite.create(name, target, createOnly, this.services, measureReplaced, inFolder, admitReplaced);
    // A plain upload starts over (PROTOCOL.md): once it is committed, a kept partial upload of the
    // name is stale and goes, and its bytes stop counting against the quota. (A large one replaced
    // it already: it staged in the same partial file.)
    return this.partials.mayHold(name) ? dropKeptOnCommit(staged, () => this.partials.discard(name)) : staged;
  }

  /**
   * Reads no file: each folder's small files get their digests from its digest log (one read per
   * folder), large ones from their sidecars; a file the server has no valid record of shows none.
   * (Hashing them here made each LIST of a folder of small files read all of it: issue 16.)
   */
  async list(prefix: string, { jail = '', limit, hash = DEFAULT_HASH, signal, page, folders, shallow }: ListOptions): Promise<ListedFile[]> {
    const name = (prefix === '' ? '' : prefix) as RemoteName;
    const folder = prefix === '' ? this.paths.realRoot : this.paths.pathOf(name);
    // The folder itself must resolve inside the jail, like any other name (a planted link); missing
    // only if it is missing inside (realOrMissing).
    const real = await this.paths.realOrMissing(folder, name, jail);
    if (real === undefined) return [];
    const found: ListedFile[] = [];
    // A page resumes after its cursor's path below the folder (a cursor elsewhere: from the start).
    const after = page?.after !== undefined && (prefix === '' || page.after.startsWith(prefix + '/')) ? page.after.slice(prefix === '' ? 0 : prefix.length + 1).split('/') : undefined;
    await walkListing(real, prefix, after, found, { digests: this.digests, sorted: this.sortedFolders, algorithm: hash, signal, max: page ? limit + 1 : limit, paged: page !== undefined, folders, shallow, listed: prefix });
    return found;
  }

  /** LIST PAGED / LIST AFTER: pages in name order, depth first (local-listing.ts). */
  readonly listsInPages = true;

  /** LIST FOLDERS / SHALLOW: folder lines from the walk, and a walk of one folder only. */
  readonly listsFolders = true;

  async usage(prefix: string): Promise<number> {
    const start = prefix === '' ? this.paths.realRoot : this.paths.pathOf(prefix as RemoteName);
    // Resolved and checked like any name: a user's own folder that is a link (to outside, to another
    // user's, to nothing) is refused alike, never walked (its byte count told what lay at its end).
    const real = prefix === '' ? start : await this.paths.realOrMissing(start, prefix as RemoteName, prefix);
    const [stored, partial] = await Promise.all([real === undefined ? 0 : folderBytes(real, prefix === ''), this.partials.bytesUnder(prefix)]);
    return stored + partial;
  }

  /**
   * Refuse up front what cannot fit, rather than fail at 90%. Small files skip the statfs call (one
   * more syscall each): if the disk is full their write fails with NO_SPACE just the same.
   */
  private assertSpaceFor(size: number, name: RemoteName): void {
    if (size < SPACE_CHECK_MIN_BYTES) return;
    const fs = statfsSync(this.paths.realRoot);
    const free = fs.bavail * fs.bsize;
    if (size > free) {
      throw new RxferError('NO_SPACE', `${name} needs ${size} bytes but the storage has ${free} free`, { size, free });
    }
  }
}

/**
 * `staged`, whose commit also drops a kept partial upload and counts its bytes as freed: a commit
 * that succeeded, or one answered NOT_DURABLE (the file is in place all the same).
 */
const dropKeptOnCommit = (staged: StagedWrite, discardKept: () => Promise<number>): StagedWrite => ({
  get sink() {
    return staged.sink;
  },
  resumed: staged.resumed,
  ...(staged.writeWhole && { writeWhole: (data: Uint8Array) => staged.writeWhole!(data) }),
  abort: () => staged.abort(),
  suspend: () => staged.suspend(),
  commit: async (verified) => {
    // A kept upload that cannot be deleted stays, still counted, until it expires.
    const dropKept = () => discardKept().catch(() => 0);
    const file = await staged.commit(verified).catch(async (err: unknown) => {
      if (!isUnsynced(err)) throw err;
      throw unsyncedWithMore(err, 'replacedBytes', await dropKept());
    });
    return { ...file, replacedBytes: file.replacedBytes + (await dropKept()) };
  },
});

/** Sum of file sizes below `folder` (links not followed); the server's own metadata folder is skipped. */
const folderBytes = async (folder: string, isRoot: boolean): Promise<number> => {
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const entry of entries) {
    if (isRoot && entry.name === '.rxfer') continue;
    const path = join(folder, entry.name);
    if (entry.isDirectory()) total += await folderBytes(path, false);
    else if (entry.isFile()) total += (await lstat(path).catch(() => undefined))?.size ?? 0;
  }
  return total;
};
