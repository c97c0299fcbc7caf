import { lstatSync } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { RxferError, toRxferError } from '../errors/rxfer-error';
import type { ListingEntry } from '../protocol/listing';
import type { ListingPage } from './list.request';
import { ListedNameCheck } from './listed-names';
import type { TransferResult } from './client-options';
import type { RxferClient } from './rxfer-client';
import { identicalFiles } from './identical';
import { FileWindow } from './file-window';
import { cannotSyncAFolder, localIo, localIoError } from './local-io';
import { clientFolders } from '../io/quick-fsync';
import { isUnfinishedDownloadName } from './staging-file';
import { SMALL_DOWNLOAD_MAX_BYTES } from './small-staging-file';

export interface TreeResult {
  /** Files copied, and their bytes (skipped files not included). */
  readonly files: number;
  readonly bytes: number;
  /** Files left alone because the other side already had them, same size and digest. */
  readonly skipped: number;
  /**
   * get -r: listed files named as this client's own unfinished downloads (isUnfinishedDownloadName),
   * not written; how many, and the local paths of the first few. Absent when there were none.
   */
  readonly unfinished?: { readonly count: number; readonly names: readonly string[] };
}

export interface TreeOptions {
  /** Skip files whose size and digest already match at the other end (default true). */
  readonly skipIdentical?: boolean;
  /** Continue interrupted transfers of large files (default true; see UploadOptions.resume). */
  readonly resume?: boolean;
  /**
   * Abandons the copy (the CLI's Ctrl-C, which also closes the connection): put -r stops walking the
   * local tree at once instead of going through the rest of it only to count what it did not send,
   * and its error then counts only the files it reached.
   */
  readonly signal?: AbortSignal;
}

/** A file of a tree that was not copied, and why; `index`: its place in the tree, for the report's order. */
export interface FileFailure {
  readonly index: number;
  readonly name: string;
  readonly error: RxferError;
}

/** Downloads queued at once (the server answers 32 at a time per connection anyway). */
const WINDOW_FILES = 64;

/**
 * Small files (as listed) go to the server in groups of this many, one request of the client each
 * (RxferClient.downloadFiles): a request per 4 KiB file cost the client more than the file did.
 */
const GROUP_FILES = 16;

/** Unfinished downloads' names a tree copy's result gives (isUnfinishedDownloadName); the rest are counted. */
const UNFINISHED_NAMED = 3;

/** Failures named one by one in a tree's error; the rest are counted. */
const NAMED_FAILURES = 3;

/**
 * What a tree copy ends with when some of its files failed and the others were copied: the first
 * failure's code (scripts match on it), and a message that names the first few, in tree order.
 * `unsent`: files not attempted because the connection was lost first.
 */
export const treeFailure = (done: string, files: number, failures: readonly FileFailure[], unsent = 0): RxferError => {
  const sorted = [...failures].sort((a, b) => a.index - b.index);
  const first = sorted[0]!.error;
  if (files === 1 && unsent === 0) return first;
  const named = sorted.slice(0, NAMED_FAILURES).map(({ name, error }) => {
    const code = error.code === first.code ? '' : `${error.code} `;
    return error.message.includes(name) ? `${code}${error.message}` : `${name}: ${code}${error.message}`;
  });
  const more = sorted.length > NAMED_FAILURES ? [`${sorted.length - NAMED_FAILURES} more failed`] : [];
  const lost = unsent > 0 ? [`${unsent} not sent once the connection was lost`] : [];
  // NOT_DURABLE: the file is in place (its folder fsync failed); "were not stored" would be untrue of it.
  const undurable = sorted.filter(({ error }) => error.code === 'NOT_DURABLE').length;
  const outcome =
    undurable === 0 ? `were not ${done}` : undurable === sorted.length && unsent === 0 ? `were ${done} but not made durable` : `failed (${undurable} of them ${done} but not made durable)`;
  const message = `${failures.length + unsent} of ${files} files ${outcome}: ${[...named, ...more, ...lost].join('; ')}`;
  return new RxferError(first.code, message, { failed: failures.length + unsent, files }, { cause: first });
};

/**
 * Refuses a folder of the tree that is, or lies under, a symbolic link inside the target (`root`).
 * mkdir -p and the writes would go through it, so a name the server lists (`s/.bashrc`) would land
 * wherever the link points: outside the target. rsync does not write through such a link either
 * (without --keep-dirlinks it replaces it); rxfer stops instead of touching it. `root` itself may be
 * a link (written through, as cp does with a target folder); what does not exist yet is made below.
 */
export const refuseLinkBelow = (root: string, folder: string): void => {
  const inside = root.endsWith(sep) ? root : root + sep;
  for (let path = folder; path !== root && path.startsWith(inside); path = dirname(path)) {
    let isLink = false;
    try {
      isLink = lstatSync(path).isSymbolicLink();
    } catch {
      // Missing (mkdir makes it below), ENOTDIR (a file on the way), EACCES: mkdir says so in its own words.
    }
    if (isLink) {
      throw new RxferError('LOCAL_IO', `${path} is a symbolic link inside the target ${root}: get -r does not write through it (files listed below it would land where it points); remove it, or copy into another folder`, { path });
    }
  }
};

/** The folders `mkdir -p folder` made: from `made` (the first it made, undefined for none) down to `folder`. */
const madeOnTheWay = (folder: string, made: string | undefined): string[] => {
  const paths: string[] = [];
  if (made === undefined) return paths;
  // mkdir gives `made` in the form `folder` was given in; `.` and `/` are their own dirname, so the walk
  // also stops at the top (a relative `x` made from `.`: hostile pass t, a loop that never ended).
  for (let path = folder; path.length >= made.length; path = dirname(path)) {
    paths.push(path);
    if (path === made || dirname(path) === path) break;
  }
  return paths;
};

/**
 * The fsyncs that make a tree copy's folders durable, each made once per copy: a folder's own entries
 * (its files: skipped ones too, which an earlier run may have renamed into place without a sync; its
 * folders), and above it each folder up to the target's parent, in which its entry lives. A file's
 * own folder is fsynced again after its rename (the download's commit); these come before any file
 * of the page is asked for, so a crash can never take a folder with files reported saved in it, nor
 * can a run again report "already there" of a file whose rename or folder was never made durable
 * (hostile pass t). A folder made since its parent's sync has that parent synced again. Gathered
 * (clientFolders), so one fsync serves every file of a folder. A failure stops the copy (LOCAL_IO):
 * no file listed from there on is asked for (downloads of earlier pages still under way end as they
 * end). A folder that cannot be fsynced at all is let through (cannotSyncAFolder).
 */
class TreeSyncs {
  private readonly synced = new Set<string>();
  private readonly top: string;

  /**
   * `root`: the target folder, as an absolute path; `madeRoot`: the first folder `mkdir -p` made for
   * it, if any (its parent holds its entry: the syncs reach up to there, hostile pass t).
   * `isNew`: whether this copy made a folder, which is then empty until its files are renamed into
   * it (each rename syncs it): only its parent needs a sync before them.
   */
  constructor(
    root: string,
    madeRoot: string | undefined,
    private readonly isNew: (folder: string) => boolean,
  ) {
    this.top = dirname(madeRoot === undefined ? root : resolve(madeRoot));
  }

  /** Folders just made (`mkdir -p`): their parents hold a new entry, and need a sync again. */
  made(folders: Iterable<string>): void {
    for (const folder of folders) this.synced.delete(dirname(resolve(folder)));
  }

  /**
   * Syncs each of `folders` (the target or inside it, as the tree's paths are written) and the
   * folders above it, those not synced since their last change.
   */
  async sync(folders: Iterable<string>): Promise<void> {
    const wanted: string[] = [];
    for (const folder of folders) {
      const real = resolve(folder);
      for (let path = this.isNew(folder) ? dirname(real) : real; !this.synced.has(path); path = dirname(path)) {
        this.synced.add(path);
        wanted.push(path);
        if (path === this.top || dirname(path) === path) break;
      }
    }
    await Promise.all(
      wanted.map((folder) =>
        clientFolders.sync(folder).catch((err: unknown) => {
          if (!cannotSyncAFolder(err)) throw localIoError(err, 'fsync the folder', folder, 'the copy stopped: files listed from there on were not downloaded');
        }),
      ),
    );
  }
}

/** The page's stop (a local failure, a lost listing), with the failures of files before it: none may go unreported (hostile pass t). */
const stoppedAfter = (stop: unknown, failures: readonly FileFailure[], wanted: number): RxferError => {
  const stopped = toRxferError(stop);
  if (failures.length === 0) return stopped;
  const before = treeFailure('downloaded', wanted, failures);
  return new RxferError(stopped.code, `${stopped.message}; also, ${before.message}`, { ...stopped.detail, ...before.detail }, { cause: stopped });
};

/**
 * `get -r`: checks **every** name the server lists before anything is written (one hostile name and
 * nothing is downloaded), then downloads all files pipelined on the one connection, each verified
 * and renamed into place as a single download is. A file that fails does not stop the others; the
 * error that ends it names the ones that failed, once every download has cleaned up.
 *
 * Two passes over the listing, one page at a time (issue 17: the whole plan of 200,000 files was
 * ≈ 300 MiB of client). Why two: "one hostile name and nothing is written" needs every name seen
 * before the first write, and keeping them all until then was that memory; a second LIST costs the
 * server one more walk of the folder, a few per cent of the copy. The first pass only checks names
 * (ListedNameCheck, O(page)); the second lists again and downloads page by page, checking again.
 * A listing of one page is kept from the first pass, not asked for twice. The folder may
 * change between the passes, as it may between two pages of one: a file added meanwhile is
 * downloaded if its name passes the same check, one removed is not (or fails as NOT_FOUND if it goes
 * after the second pass listed it, as before). Only a server that lists other names the second time
 * can get a refusal after some files were written; the check still runs on every name, so nothing
 * lands outside the target, and the copy stops there.
 */
export const downloadTree = async (
  client: RxferClient,
  remoteFolder: string,
  localDir: string,
  options: TreeOptions & { onFile?: (entry: ListingEntry, result: TransferResult) => void } = {},
): Promise<TreeResult> => {
  const firstPass = new ListedNameCheck(localDir, remoteFolder);
  let onlyPage: ListingPage | undefined;
  let pages = 0;
  for await (const page of client.listPages(remoteFolder)) {
    firstPass.page(page);
    onlyPage = ++pages === 1 && !page.more ? page : undefined;
  }
  const madeRoot = await localIo('create the folder', localDir, () => mkdir(localDir, { recursive: true }));
  const secondPass = new ListedNameCheck(localDir, remoteFolder);
  const root = resolve(localDir);
  // Where each checked folder really is (the target itself may be a link, followed as cp does): every
  // file is renamed into exactly that folder, so one swapped for a link after its check is not written through.
  const realRoot = await localIo('resolve', localDir, () => realpath(root));
  /** How a file of the tree is downloaded into its folder: looked at or not, and the folder it must land in. */
  const placeOf = (target: string) => {
    const folder = dirname(target);
    return { intoNewFolder: isNew(folder), checkedFolder: join(realRoot, relative(root, folder)) };
  };
  /** Folders found free of links (refuseLinkBelow), once each. */
  const checkedFolders = new Set<string>();
  /**
   * Folders this copy made (all of them when it made the target): only its own files are in them,
   * so their files need no look for a local copy, a directory or kept bytes under their names.
   */
  const newFolders = new Set<string>();
  const isNew = (folder: string) => madeRoot !== undefined || newFolders.has(folder);
  const syncs = new TreeSyncs(root, madeRoot, isNew);
  // The target and the folders above it it was made in, even for a remote folder with nothing in it.
  await syncs.sync([localDir]);
  let unfinishedCount = 0;
  const unfinishedNames: string[] = [];
  // At most WINDOW_FILES downloads queued at once: thousands of pending requests, each with its
  // closures and reply turn, held memory for the whole tree (200,000 files: issue 17).
  let bytes = 0;
  let wanted = 0;
  let listed = 0;
  const failures: FileFailure[] = [];
  /** What stopped the copy before its end (a local failure, a listing lost), if anything did. */
  let stop: { err: unknown } | undefined;
  // Weighed in files: a group of small ones counts as its files, so as many are queued either way.
  const window = new FileWindow(WINDOW_FILES, WINDOW_FILES);
  const fetched = (entry: ListingEntry, result: TransferResult) => {
    bytes += result.size;
    options.onFile?.(entry, result);
  };
  const failed = ({ index, target }: { index: number; target: string }, err: unknown) => void failures.push({ index, name: target, error: toRxferError(err) });
  /** Small files waiting for their group to fill (sendGroup). */
  let group: { index: number; entry: ListingEntry; target: string }[] = [];
  const sendGroup = async () => {
    const files = group;
    group = [];
    if (files.length === 0) return;
    await window.free(files.length);
    const items = files.map(({ entry, target }) => ({ remoteName: entry.name, localPath: target, ...placeOf(target) }));
    window.add(
      client.downloadFiles(items, { resume: options.resume }).then(
        (outcomes) =>
          outcomes.forEach((outcome, k) => {
            const file = files[k]!;
            if (outcome.status === 'fulfilled') fetched(file.entry, outcome.value);
            else failed(file, outcome.reason);
          }),
        // Not expected (each file settles on its own), but then none of them is counted as copied.
        (err: unknown) => files.forEach((file) => failed(file, err)),
      ),
      files.length,
    );
  };
  try {
    for await (const page of onlyPage === undefined ? client.listPages(remoteFolder) : [onlyPage]) {
      const targets = secondPass.page(page);
      listed += targets.length;
      const pairs: { localPath: string; remote: ListingEntry }[] = [];
      for (const [i, entry] of page.entries.entries()) {
        const localPath = targets[i]!;
        if (!isUnfinishedDownloadName(basename(localPath))) {
          pairs.push({ localPath, remote: entry });
          continue;
        }
        // Not written: it would be taken for the kept bytes of its neighbour's download (staging-file.ts).
        unfinishedCount++;
        if (unfinishedNames.length < UNFINISHED_NAMED) unfinishedNames.push(localPath);
      }
      for (const folder of new Set(pairs.map(({ localPath }) => dirname(localPath)))) {
        if (!checkedFolders.has(folder)) refuseLinkBelow(root, folder);
        checkedFolders.add(folder);
        // mkdir -p says the first folder it made: that one and each below it on the way are new.
        const made = await localIo('create the folder', folder, () => mkdir(folder, { recursive: true }));
        const madeHere = madeOnTheWay(folder, made);
        for (const path of madeHere) newFolders.add(path);
        syncs.made(madeHere);
      }
      await syncs.sync(new Set(pairs.map(({ localPath }) => dirname(localPath))));
      // The listing gives size and digest for free: a file already here costs no request at all.
      const compared = options.skipIdentical === false ? [] : pairs.map((pair) => (isNew(dirname(pair.localPath)) ? { localPath: pair.localPath } : pair));
      const identical = await identicalFiles(compared, client.hash);
      for (const [i, { localPath: target, remote: entry }] of pairs.entries()) {
        if (identical[i]) continue;
        const file = { index: wanted++, entry, target };
        if (entry.size <= SMALL_DOWNLOAD_MAX_BYTES) {
          if (group.push(file) === GROUP_FILES) await sendGroup();
          continue;
        }
        await window.free(1);
        window.add(
          client.download(entry.name, target, { resume: options.resume, ...placeOf(target) }).then(
            (result) => fetched(entry, result),
            (err: unknown) => failed(file, err),
          ),
          1,
        );
      }
      await sendGroup();
    }
  } catch (err) {
    stop = { err };
  } finally {
    // Small files still waiting for their group are asked for too (failing with the connection if it
    // was lost): each file counted as wanted gets its outcome. Downloads in flight clean up (staging
    // files) before anything, success or not, is reported: a group's failures are known once all its
    // files have settled (hostile pass o: a loss in a page's last group answered with the bare loss of
    // the next LIST).
    await sendGroup();
    await window.drained();
  }
  // A page lost with the connection: the downloads in flight say so, as when no page was due. Any
  // other stop is told with the failures before it (files saved but not durable among them).
  if (stop !== undefined && !(client.isClosed && failures.length > 0)) throw stoppedAfter(stop.err, failures, wanted);
  if (failures.length > 0) throw treeFailure('downloaded', wanted, failures);
  const unfinished = unfinishedCount > 0 ? { unfinished: { count: unfinishedCount, names: unfinishedNames } } : {};
  return { files: wanted, bytes, skipped: listed - wanted - unfinishedCount, ...unfinished };
};
