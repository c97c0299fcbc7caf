import { constants } from 'node:fs';
import fsp = require('node:fs/promises');
import type { FileHandle } from 'node:fs/promises';

/**
 * Runs `before(folder)` ahead of every folder fsync the server's storage makes from now on (it opens
 * a folder through fs/promises, O_DIRECTORY, in opened-paths.ts, and fsyncs that very descriptor after
 * the change made through it), and `after(folder)` once one succeeded; `folder` is the path the
 * folder was opened by (`before` also gets the handle about to be synced). `restore` puts fs/promises' own `open` back.
 */
export const watchFolderSyncs = (hooks: { before?: (folder: string, handle: FileHandle) => Promise<void> | void; after?: (folder: string) => void }): { restore(): void } => {
  const realOpen = fsp.open;
  (fsp as { open: typeof fsp.open }).open = async (path, flags, mode) => {
    const handle = await realOpen(path, flags, mode);
    if (typeof flags === 'number' && (flags & constants.O_DIRECTORY) !== 0) {
      const realSync = handle.sync.bind(handle);
      handle.sync = async () => {
        await hooks.before?.(String(path), handle);
        await realSync();
        hooks.after?.(String(path));
      };
    }
    return handle;
  };
  return {
    restore: () => {
      (fsp as { open: typeof fsp.open }).open = realOpen;
    },
  };
};

/** Every folder fsync from now on, by the folder's path (watchFolderSyncs), in `synced`. */
export const recordFolderSyncs = (): { readonly synced: string[]; restore(): void } => {
  const synced: string[] = [];
  return { synced, ...watchFolderSyncs({ after: (folder) => synced.push(folder) }) };
};
