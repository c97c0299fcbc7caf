import { lstat, mkdir, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants } from 'node:fs';
import { RxferError } from '../errors/rxfer-error';

/** Where uploads' staging files live: `<root>/.rxfer/staging/`, on the root's file system. */
export const stagingFolderOf = (realRoot: string): string => join(realRoot, '.rxfer', 'staging');

/** Written when the server stops in order, removed when it starts: its absence means a crash. */
const cleanStopMarker = (realRoot: string): string => join(realRoot, '.rxfer', 'clean-stop');

/** The staging file names of this and earlier versions (io/staging-name.ts). */
const STAGING_PREFIX = '.rxfer-part-';

/**
 * Staging files live outside the users' folders: one beside its target moved with its folder when
 * the folder was renamed mid-upload, and was then left there for good, invisible to LIST, refused by
 * DELETE and outside any quota (issue 14, found by the hostile tests). Here a crash leaves them in
 * one place, emptied at every start. Roots written by earlier versions, or by a server that did not
 * stop in order, may still hold staging files in users' folders: those are swept once, by a walk of
 * the tree (at most a second or two for 100,000 files), only when the last stop was not clean.
 * A staging file is never reopened, so deleting one (or a second link a crash left to a committed
 * file) loses nothing.
 */
export const prepareStagingArea = async (realRoot: string): Promise<void> => {
  await refuseLinkedOwnFolders(realRoot);
  const staging = stagingFolderOf(realRoot);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const cleanStop = await unlink(cleanStopMarker(realRoot)).then(
    () => true,
    () => false,
  );
  if (!cleanStop) await sweepStagingFiles(realRoot, true);
};

/**
 * The server's own folders that a start reaches by path (emptied, swept, made): `.staging` itself is
 * a link removed and made again by prepareStagingArea, but through `.rxfer` a link, the start deleted
 * what the folder at its end held in `staging/` and made its folders there, and through `sums` (or
 * `sums/folders`) a link it deleted the `.tmp` files out there (hostile pass u). Refused before any of it.
 */
const OWN_FOLDERS = ['.rxfer', '.rxfer/partials', '.rxfer/sums', '.rxfer/sums/folders'];

const refuseLinkedOwnFolders = async (realRoot: string): Promise<void> => {
  for (const folder of OWN_FOLDERS) {
    const stats = await lstat(join(realRoot, folder)).catch(() => undefined);
    if (stats?.isSymbolicLink()) {
      throw new RxferError('STORAGE_FAILED', `${join(realRoot, folder)} is a symbolic link: the server keeps its own files there and does not follow it out of the storage root; move it away and start again`);
    }
  }
};

/** The server stopped in order: the next start need not walk the tree. */
export const markCleanStop = async (realRoot: string): Promise<void> => {
  // Never through a link planted under the marker's name (it would truncate the file it points at):
  // refused, the marker is missing, and the next start sweeps as after a crash.
  await writeFile(cleanStopMarker(realRoot), '', { flag: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW }).catch(() => undefined);
};

const sweepStagingFiles = async (folder: string, isRoot: boolean): Promise<void> => {
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (isRoot && entry.name === '.rxfer') continue;
    const path = join(folder, entry.name);
    if (entry.isDirectory()) await sweepStagingFiles(path, false);
    else if (entry.name.startsWith(STAGING_PREFIX) && (await lstat(path).catch(() => undefined))?.isFile()) await unlink(path).catch(() => undefined);
  }
};
