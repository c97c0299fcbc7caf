import fs = require('node:fs');

type Callback = (err: NodeJS.ErrnoException | null) => void;

/** The folder open on `fd`, or undefined for any other descriptor. */
const folderOf = (fd: number): string | undefined => {
  try {
    return fs.fstatSync(fd).isDirectory() ? fs.readlinkSync(`/proc/self/fd/${fd}`) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Runs `before(folder, fd)` ahead of every folder fsync the server's storage makes from now on (it
 * opens a folder, O_DIRECTORY, in opened-paths.ts, and fsyncs that very descriptor in the thread pool
 * after the change made through it), and `after(folder)` once one succeeded; `folder` is the path
 * the descriptor was open on when the fsync was asked for (`before` also gets the descriptor about to
 * be synced). `restore` puts fs' own `fsync` back.
 */
export const watchFolderSyncs = (hooks: { before?: (folder: string, fd: number) => Promise<void> | void; after?: (folder: string) => void }): { restore(): void } => {
  const realFsync = fs.fsync;
  (fs as { fsync: unknown }).fsync = (fd: number, callback: Callback): void => {
    const folder = folderOf(fd);
    if (folder === undefined) return realFsync(fd, callback);
    void (async () => {
      try {
        await hooks.before?.(folder, fd);
      } catch (err) {
        return callback(err as NodeJS.ErrnoException);
      }
      realFsync(fd, (err) => {
        if (!err) hooks.after?.(folder);
        callback(err);
      });
    })();
  };
  return {
    restore: () => {
      (fs as { fsync: unknown }).fsync = realFsync;
    },
  };
};

/** Every folder fsync from now on, by the folder's path (watchFolderSyncs), in `synced`. */
export const recordFolderSyncs = (): { readonly synced: string[]; restore(): void } => {
  const synced: string[] = [];
  return { synced, ...watchFolderSyncs({ after: (folder) => synced.push(folder) }) };
};
