import { close, fstat, open, read } from 'node:fs';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { SMALL_FILE_BYTES } from './digest-index';
import { storageError } from './storage-errors';
import { type SteadyVersion, steadyAcross } from './digest-log';
import { READ_FLAGS, assertOpenedWithin } from './opened-paths';

/** A small file read whole: its bytes as fstat found it, and its mtime. */
export interface SmallFile {
  readonly body: Buffer;
  readonly mtimeMs: number;
  /**
   * The version read, if fstat saw the same one (size, mtime, inode, ctime) before and after a whole
   * read: only then are the bytes that version's, and its digest may be recorded. Another program's
   * write meanwhile may have left a mix of two versions (hostile pass v).
   */
  readonly steady: SteadyVersion | undefined;
}

/**
 * A file of at most SMALL_FILE_BYTES read whole in one pass: open, fstat, read, close, through Node's
 * callback API, undefined (after the close) for a larger file, which is streamed instead. Refused if
 * the open led outside `within` (assertOpenedWithin).
 *
 * Asynchronous on purpose: a synchronous read was cheaper still, but a read that never returns (a
 * dead network or FUSE mount under the root) then froze the server's only thread, and with it every
 * other client; in the thread pool it ties up one pool thread and the storage deadline answers the
 * request (test/regressions/hostile-2026-12-04-dead-mount.test.ts). The callback calls avoid
 * FileHandle, whose promise and handle machinery per call was the larger part of the cost
 * (`get -r` of 2,000 × 4 KiB, bench/findings.md, issue 20). What fstat saw is what is read: a file
 * that grows meanwhile is cut there, one that shrinks ends early (its digest is of the bytes sent).
 */
export const readSmallFile = (path: string, name: RemoteName, within: string): Promise<SmallFile | undefined> =>
  new Promise((resolve, reject) => {
    const fail = (err: unknown) => reject(storageError(err, 'read', name));
    open(path, READ_FLAGS, (openErr, fd) => {
      if (openErr) return fail(openErr);
      const finish = (err: unknown, file?: SmallFile) =>
        close(fd, (closeErr) => {
          if (err || closeErr) fail(err ?? closeErr);
          else resolve(file);
        });
      try {
        assertOpenedWithin(fd, within, name);
      } catch (err) {
        return finish(err);
      }
      fstat(fd, (statErr, stats) => {
        if (statErr) return finish(statErr);
        if (!stats.isFile()) return finish(new RxferError('NAME_CONFLICT', `${name} is a folder, not a file`));
        if (stats.size > SMALL_FILE_BYTES) return finish(undefined);
        const body = Buffer.allocUnsafe(stats.size);
        // Looked at again after the read (see SmallFile.steady); a failing look only costs the record.
        const done = (length: number): void =>
          fstat(fd, (afterErr, after) =>
            finish(undefined, { body: body.subarray(0, length), mtimeMs: stats.mtimeMs, steady: !afterErr && length === stats.size ? steadyAcross(stats, after) : undefined }),
          );
        const readFrom = (length: number): void => {
          if (length >= body.length) return done(length);
          read(fd, body, length, body.length - length, length, (readErr, n) => {
            if (readErr) return finish(readErr);
            if (n === 0) return done(length);
            readFrom(length + n);
          });
        };
        readFrom(0);
      });
    });
  });
