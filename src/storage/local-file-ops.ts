import { Stats, constants } from 'node:fs';
import { link, lstat, mkdir, open, rename, rmdir, unlink } from 'node:fs/promises';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { DigestIndex, SMALL_FILE_BYTES, hashHandle } from './digest-index';
import { steadyAcross } from './digest-log';
import { NameLocks } from './name-locks';
import { RootPaths } from './root-paths';
import { HASH_ALGORITHMS, HashAlgorithm } from '../integrity/hash-algorithm';
import { FileStatus } from './storage-adapter';
import { isLinkOnTheWay, storageError, syncAfterChange } from './storage-errors';
import { inOpenedFolder } from './opened-paths';
import { basename, join } from 'node:path';

/**
 * STAT, DELETE, RENAME and MKDIR on the local file system, through the same resolver as transfers:
 * every folder is checked (realpath inside the user's root) before it is touched, and a link is
 * never followed or acted on. Changes are made durable with a fsync of the folder they were made
 * in (through its descriptor), as commits are.
 */
export class LocalFileOps {
  constructor(
    private readonly paths: RootPaths,
    private readonly digests: DigestIndex,
    /** Shared with commits: a rename or delete and a commit of the same name take turns. */
    private readonly locks: NameLocks,
  ) {}

  /**
   * `work` on the path of `name` through its folder, opened and shown to be the real `folder` that was
   * checked (opened-paths.ts): a folder swapped for a link since its check cannot lead a look, a
   * delete, a rename or a mkdir out of the root (hostile pass i). `syncFolder` fsyncs that same folder,
   * the one the change was made in, whatever has been renamed or swapped since (hostile pass l).
   */
  private through<T>(folder: string, name: RemoteName, work: (path: string, syncFolder: () => Promise<void>) => Promise<T>): Promise<T> {
    const path = this.paths.pathOf(name);
    return inOpenedFolder(folder, path, (inside, syncFolder) => work(join(inside, basename(path)), syncFolder));
  }

  /**
   * The entry itself (not followed); NOT_FOUND if missing, NAME_INVALID if it is a link. A folder on
   * its way swapped for a link since its cached check is checked again (as RootPaths.inFolderFor does):
   * the answer is then the one an uncached check gives, never NOT_FOUND for it (hostile pass r).
   */
  private async entry(name: RemoteName, jail: string) {
    // lstat's failures but a link on the way are "nothing there"; that one is checked again, and if
    // met again told as the folder check tells it (storageError).
    const look = async (folder: string | undefined) => ({
      folder,
      stats: folder === undefined ? undefined : await this.through(folder, name, (path) => lstat(path)).catch((err: unknown) => (isLinkOnTheWay(err) ? Promise.reject(err) : undefined)),
    });
    const checkAgain = () => this.paths.existingFolderOf(name, jail);
    const { folder, stats } = await this.paths.inCheckedAgain(await checkAgain(), checkAgain, look).catch((err: unknown) => Promise.reject(storageError(err, 'look at', name)));
    if (!stats) throw new RxferError('NOT_FOUND', `${name} does not exist`);
    if (stats.isSymbolicLink()) throw new RxferError('NAME_INVALID', `${name} is a symbolic link; rxfer does not follow links`);
    return { folder: folder!, stats, path: this.paths.pathOf(name) };
  }

  /**
   * A file's digest comes from what the server knows (the folder's digest log for a small file, a
   * sidecar for a large one). A small file it knows nothing of (put there by other means, or changed)
   * is hashed once and remembered, so STATs pipelined over many files do not read each every time
   * (one changed in the last seconds is hashed each time until then: DigestIndex.rememberHashed).
   */
  async stat(name: RemoteName, jail: string, algorithm: HashAlgorithm): Promise<FileStatus> {
    const { folder, stats } = await this.entry(name, jail);
    if (stats.isDirectory()) return { type: 'folder', size: 0, mtimeMs: stats.mtimeMs };
    let digest = await this.digests.lookup(name, stats, algorithm);
    if (digest === undefined && stats.size <= SMALL_FILE_BYTES) {
      const handle = await this.through(folder, name, (path) => open(path, constants.O_RDONLY | constants.O_NOFOLLOW));
      try {
        const opened = steadyAcross(stats, await handle.stat());
        digest = await hashHandle(handle, stats.size, algorithm);
        // Remembered only for the version looked at, the same from the look to after the hash: a file
        // being changed right now is not (its bytes may mix two versions: hostile pass v). A look
        // that fails costs only the record, never the STAT.
        const after = opened && (await handle.stat().catch(() => undefined));
        const steady = after && steadyAcross(opened, after);
        if (steady) this.digests.rememberHashed(name, steady, algorithm, digest).catch(() => undefined);
      } finally {
        await handle.close();
      }
    }
    return { type: 'file', size: stats.size, mtimeMs: stats.mtimeMs, ...(digest && { digest }) };
  }

  remove(name: RemoteName, jail: string): Promise<number> {
    return this.locks.with([this.paths.pathOf(name)], () => this.removeLocked(name, jail));
  }

  private async removeLocked(name: RemoteName, jail: string): Promise<number> {
    const { folder, stats } = await this.entry(name, jail);
    const removedBytes = stats.isDirectory() ? 0 : stats.size;
    try {
      await this.through(folder, name, async (path, syncFolder) => {
        if (stats.isDirectory()) {
          await rmdir(path);
          this.paths.forgetFolders();
        } else {
          await unlink(path);
          if (stats.size > SMALL_FILE_BYTES) await this.digests.forget(name);
        }
        await syncAfterChange(syncFolder, `${name} is deleted`, { removedBytes });
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY') throw new RxferError('NAME_CONFLICT', `${name} is a folder that is not empty`);
      throw storageError(err, 'delete', name);
    }
    return removedBytes;
  }

  /**
   * Under the locks of both names: a file rename is link + unlink by path, and an upload committed
   * to `from` between the two would be the file unlinked (issue 14: both clients were told yes).
   */
  rename(from: RemoteName, to: RemoteName, jail: string): Promise<void> {
    return this.locks.with([this.paths.pathOf(from), this.paths.pathOf(to)], () => this.renameLocked(from, to, jail));
  }

  private async renameLocked(from: RemoteName, to: RemoteName, jail: string): Promise<void> {
    const source = await this.entry(from, jail);
    const targetFolder = await this.paths.folderFor(to, jail);
    const target = this.paths.pathOf(to);
    if (source.stats.isDirectory() && (target + '/').startsWith(source.path + '/')) {
      throw new RxferError('NAME_CONFLICT', `cannot move the folder ${from} into itself`);
    }
    // Both paths through their checked folders, opened (see `through`); then both folders fsynced.
    // A folder swapped for a link since its check is told under the name whose folder it is (hostile pass r).
    const onItsWay = (name: RemoteName) => (err: unknown) => Promise.reject(isLinkOnTheWay(err) ? storageError(err, 'rename', name) : err);
    const betweenFolders = (work: (fromPath: string, toPath: string) => Promise<void>) =>
      this.through(source.folder, from, (fromPath, syncSource) =>
        this.through(targetFolder, to, async (toPath, syncTarget) => {
          await work(fromPath, toPath);
          // One folder (a rename within it): one fsync.
          const syncs = source.folder === targetFolder ? [syncSource] : [syncSource, syncTarget];
          await syncAfterChange(() => Promise.all(syncs.map((sync) => sync())).then(() => undefined), `${from} is renamed to ${to}`);
        }).catch(onItsWay(to)),
      ).catch(onItsWay(from));
    try {
      if (source.stats.isDirectory()) {
        await betweenFolders(async (fromPath, toPath) => {
          // rename() would replace an empty folder: look first (a folder rename is not atomic here).
          if (await lstat(toPath).catch(() => undefined)) throw new RxferError('EXISTS', `${to} already exists`);
          await rename(fromPath, toPath);
          this.paths.forgetFolders();
        });
      } else {
        // link() refuses an existing name atomically; then the old name goes.
        await betweenFolders(async (fromPath, toPath) => {
          await link(fromPath, toPath);
          await unlink(fromPath).catch((err: unknown) => this.undoLink(toPath, err, from, to));
          await this.carryDigests(from, to, source.stats);
        });
      }
    } catch (err) {
      // The name taken is the target's (link() refuses it), not the source's.
      throw storageError(err, 'rename', (err as NodeJS.ErrnoException).code === 'EEXIST' ? to : from);
    }
  }

  /**
   * The old name of a file rename could not be unlinked: the new link goes again, so that "cannot
   * rename" is true (the file under its old name only, as before). If even that fails, the file is
   * under both names, and the error says so rather than "cannot rename".
   */
  private async undoLink(target: string, err: unknown, from: RemoteName, to: RemoteName): Promise<never> {
    const failure = storageError(err, 'rename', from);
    await unlink(target).catch(() => {
      throw new RxferError(failure.code, `${failure.message}; ${from} is now under both names, ${from} and ${to}`, failure.detail);
    });
    throw failure;
  }

  /**
   * A renamed small file keeps its size, mtime and inode: its digests, kept by folder, follow it to
   * its new name, so that LIST and STAT still know them. (A large file's sidecar is by name; it is
   * hashed again on its next download.)
   */
  private async carryDigests(from: RemoteName, to: RemoteName, stats: Stats): Promise<void> {
    for (const algorithm of HASH_ALGORITHMS) {
      const digest = await this.digests.lookup(from, stats, algorithm).catch(() => undefined);
      if (digest !== undefined) await this.digests.remember(to, stats, algorithm, digest, true).catch(() => undefined);
    }
    if (stats.size > SMALL_FILE_BYTES) await this.digests.forget(from);
  }

  /** Under the lock of its name: a folder RENAME onto it looks before rename(2), which would replace it if empty. */
  makeFolder(name: RemoteName, jail: string): Promise<void> {
    return this.locks.with([this.paths.pathOf(name)], () => this.makeFolderLocked(name, jail));
  }

  private async makeFolderLocked(name: RemoteName, jail: string): Promise<void> {
    try {
      // In its parent, made again if it vanished since its check was remembered (as an upload's folder is).
      await this.paths.inFolderFor(name, jail, (parent) =>
        this.through(parent, name, async (path, syncFolder) => {
          await mkdir(path);
          await syncAfterChange(syncFolder, `the folder ${name} is created`);
        }),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new RxferError('EXISTS', `${name} already exists`);
      throw storageError(err, 'create', name);
    }
  }
}
