import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { FolderSync, fsyncFolderInPool } from './folder-sync';
import { FsyncPace } from './fsync-pace';

const fsyncAsync = promisify(fsync);

/**
 * fsyncs made where they cost least, for the command-line client's downloads: synchronously while
 * they return in microseconds (tmpfs, a device whose cache acknowledges at once), where a thread-pool
 * round trip per fsync cost more than the fsync (`get -r` of small files: a third of the client's CPU
 * in the kernel, waking pool threads: bench/findings.md), and through the thread pool once they are
 * seen to take longer (a disk that waits for its journal: fsyncs of many files then run side by side
 * and the file system merges them). The rule (FsyncPace) is the server's small-commit worker's too.
 *
 * Not for the server: there a synchronous fsync that never returns (a dead mount) would stop every
 * client, and the main thread's time is theirs. A command's own main thread waits either way.
 */
export class QuickFsync {
  private readonly pace = new FsyncPace();

  /** fsync of an open file. */
  file(fd: number): Promise<void> {
    return this.paced(() => fsyncSync(fd), () => fsyncAsync(fd));
  }

  /** fsync of a folder (its entries: a rename into it is durable after this). */
  folder(path: string): Promise<void> {
    return this.paced(() => syncFolderNow(path), () => fsyncFolderInPool(path));
  }

  /** `now`, timed, where the pace says so, else `inPool`; a failure rejects on either path. */
  private async paced(now: () => void, inPool: () => Promise<void>): Promise<void> {
    if (!this.pace.nextIsSync()) return inPool();
    const failure = this.pace.timedSync(now);
    if (failure !== undefined) throw failure;
  }
}

const syncFolderNow = (path: string): void => {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
};

/** The client's: one average for the process, as its downloads share one destination file system or few. */
export const clientFsync = new QuickFsync();

/**
 * Folder fsyncs shared by every download of the client's process (group commit: files committed into
 * one folder at about the same time, `get -r` or pipelined downloads, share one fsync of it).
 */
export const clientFolders = new FolderSync(
  (folder) => clientFsync.folder(folder),
  // Until the turn's I/O callbacks are done: the small files of one socket read, committed one after
  // another, then share one fsync of their folder (`get -r` of 2,000 × 4 KiB: 1,359 folder fsyncs, each
  // an open, fsync and close, against one per read of the socket).
  () => new Promise((resolve) => setImmediate(resolve)),
);
