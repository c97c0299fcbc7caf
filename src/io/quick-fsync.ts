import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { FolderSync, fsyncFolderInPool } from './folder-sync';

const fsyncAsync = promisify(fsync);

/** Moving average of an fsync (µs) below which the next one is made synchronously: tmpfs takes ≈ 1 µs. */
const SLOW_FSYNC_US = 100;

/**
 * fsyncs made where they cost least, for the command-line client's downloads: synchronously while
 * they return in microseconds (tmpfs, a device whose cache acknowledges at once), where a thread-pool
 * round trip per fsync cost more than the fsync (`get -r` of small files: a third of the client's CPU
 * in the kernel, waking pool threads: bench/findings.md), and through the thread pool once they are
 * seen to take longer (a disk that waits for its journal: fsyncs of many files then run side by side
 * and the file system merges them). The same rule as the server's small-commit worker.
 *
 * Not for the server: there a synchronous fsync that never returns (a dead mount) would stop every
 * client, and the main thread's time is theirs. A command's own main thread waits either way.
 */
export class QuickFsync {
  private averageUs = 0;

  /** fsync of an open file. */
  file(fd: number): Promise<void> {
    return this.timed(() => fsyncSync(fd), () => fsyncAsync(fd));
  }

  /** fsync of a folder (its entries: a rename into it is durable after this). */
  folder(path: string): Promise<void> {
    return this.timed(() => syncFolderNow(path), () => fsyncFolderInPool(path));
  }

  /** `now` while fsyncs are quick, else `inPool`; either way its time joins the average, failed or not. */
  private async timed(now: () => void, inPool: () => Promise<void>): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      if (this.averageUs < SLOW_FSYNC_US) now();
      else await inPool();
    } finally {
      this.averageUs = 0.8 * this.averageUs + 0.2 * (Number(process.hrtime.bigint() - started) / 1000);
    }
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
export const clientFolders = new FolderSync((folder) => clientFsync.folder(folder));
