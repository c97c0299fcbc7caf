import { closeSync, constants, existsSync, openSync, readlinkSync, renameSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/** Linux shows each open descriptor's path here, and a path through `/proc/self/fd/<n>/` stays in that folder. */
const FD_PATHS = '/proc/self/fd/';
const CAN_CHECK = existsSync(FD_PATHS);

/**
 * Renames `from` (a staging file beside `target`) over `target`, in the folder `realFolder` names and
 * in no other: the folder is opened, its descriptor shown to lead there, and the rename made through
 * it. A folder of a `get -r` target swapped for a symbolic link after the copy looked at it (another
 * program: `mv sub sub.old; ln -s /elsewhere sub`) had the copy's files land where the link pointed
 * (hostile pass o; rsync's CVE-2024-12087 was this shape); now that rename fails with ENOTDIR, and the
 * staging file is removed by its caller. Without `realFolder`, or where the system shows no descriptor
 * paths (not Linux), a plain rename by path.
 */
export const renameIntoFolder = (from: string, target: string, realFolder: string | undefined): void => {
  if (realFolder === undefined || !CAN_CHECK) return renameSync(from, target);
  const fd = openSync(dirname(target), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const leadsTo = readlinkSync(`${FD_PATHS}${fd}`);
    if (leadsTo !== realFolder) {
      throw Object.assign(new Error(`${dirname(target)} now leads to ${leadsTo}, not the folder the copy made or checked (${realFolder}); nothing written through it`), { code: 'ENOTDIR' });
    }
    renameSync(`${FD_PATHS}${fd}/${basename(from)}`, `${FD_PATHS}${fd}/${basename(target)}`);
  } finally {
    // A folder opened only to be looked through holds nothing to lose: a failing close must not turn a
    // rename that was made into a reported failure, nor hide the error of one that was not.
    try {
      closeSync(fd);
    } catch {
      // Nothing to report (see above).
    }
  }
};
