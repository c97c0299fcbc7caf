import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isUnfinishedDownloadName } from '../client/staging-file';

/** What `put -r` does not send as files: empty folders (made with MKDIR) and entries it skips. */
export interface LocalOddities {
  /** Folders with nothing in them, relative, `/`-separated. */
  readonly emptyFolders: string[];
  /** Symbolic links, sockets, FIFOs and devices: never followed nor sent (a link out of the tree is not the tree). */
  readonly skipped: string[];
  /** rxfer's own unfinished downloads (`.x.rxfer-resume`, its lock, staging files): never sent. */
  readonly unfinished: string[];
}

/**
 * Walks the folder as upload-tree does (links not followed) and notes what it leaves out, so that
 * nothing is dropped without a word. A folder holding only skipped entries counts as empty.
 */
export const localOddities = async (folder: string): Promise<LocalOddities> => {
  const found: LocalOddities = { emptyFolders: [], skipped: [], unfinished: [] };
  const walk = async (path: string, prefix: string): Promise<boolean> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    let files = false;
    let folders = false;
    for (const entry of entries) {
      const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) {
        folders = true;
        files = (await walk(join(path, entry.name), name)) || files;
      }
      else if (entry.isFile() && isUnfinishedDownloadName(entry.name)) found.unfinished.push(name);
      else if (entry.isFile()) files = true;
      else found.skipped.push(name);
    }
    // Only the deepest empty folder is made: MKDIR creates its parents.
    if (!files && !folders && prefix !== '') found.emptyFolders.push(prefix);
    return files;
  };
  await walk(folder, '');
  return found;
};
