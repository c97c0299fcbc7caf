import { open } from 'node:fs/promises';

/**
 * fsync of folders with group commit: a rename is durable once its folder is fsynced *after* it.
 * Renames that land while a folder's fsync is queued share that one fsync; one in progress cannot
 * serve them (it may have started before their rename), so a single follow-up is queued. Many small
 * files committed at once into one folder then cost about two folder fsyncs, not one each.
 */
export class FolderSync {
  private readonly running = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, Promise<void>>();

  /**
   * `fsyncFolder`: how one folder is fsynced (the client's may do it synchronously: QuickFsync).
   * `gather`: what a queued fsync waits for before it starts, so that more renames can join it. A
   * synchronous fsync starts at once otherwise, and files committed one after another (each in a
   * microtask of the same turn, as `get -r` commits the small files of one socket read) had one each.
   */
  constructor(
    private readonly fsyncFolder: (folder: string) => Promise<void> = fsyncFolderInPool,
    private readonly gather: () => Promise<void> = () => Promise.resolve(),
  ) {}

  sync(folder: string): Promise<void> {
    const waiting = this.queued.get(folder);
    if (waiting) return waiting;
    const before = this.running.get(folder) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(this.gather)
      .then(() => {
        this.queued.delete(folder);
        this.running.set(folder, next);
        return this.fsyncFolder(folder);
      })
      .finally(() => {
        if (this.running.get(folder) === next) this.running.delete(folder);
      });
    this.queued.set(folder, next);
    return next;
  }
}

/** A folder's fsync through the thread pool: open, fsync, close. */
export const fsyncFolderInPool = async (folder: string): Promise<void> => {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};
