import { closeSync, constants, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { type HashAlgorithm, hashOf } from '../integrity/hash-algorithm';
import { hashPrefix } from '../integrity/hash-prefix';

/**
 * Files up to this size are compared synchronously: open, fstat, one read, close (a few µs each on
 * a local file system). Through FileHandle each of those four was a thread-pool round trip, and an
 * identical re-run of `put -r` of 2,000 × 4 KiB spent most of its client time waiting on them
 * (bench/findings.md, issue 20). Up to 1 MiB, as files are read whole for upload: the asynchronous
 * hash takes a fresh 1 MiB buffer per file, whose pages all fault in (a re-run of 200 × 1 MiB: 1.1 s
 * of client CPU, half of it system time). Larger files are hashed asynchronously, as before.
 */
const SYNC_COMPARE_MAX_BYTES = 1024 * 1024;

/** One buffer for every synchronous compare (they never overlap): a fresh one per file was measurable GC. */
const scratch = Buffer.allocUnsafe(SYNC_COMPARE_MAX_BYTES + 1);

/** The synchronous form for a small file; undefined when the file is not small after all (then the async one decides). */
const isIdenticalSmall = (localPath: string, remote: { readonly size: number; readonly digest: string }, algorithm: HashAlgorithm): boolean | undefined => {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted under the name opens at once (and is refused as not a file below).
    fd = openSync(localPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size !== remote.size) return false;
    if (stats.size > SYNC_COMPARE_MAX_BYTES) return undefined;
    // One byte more than expected: a file that grew since the fstat is not identical.
    const buffer = scratch.subarray(0, stats.size + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
      if (length === buffer.length) return false;
    }
    return length === remote.size && hashOf(algorithm, buffer.subarray(0, length)) === remote.digest;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
};

/**
 * True if the local file has exactly the size and digest (in `algorithm`) the server reported for its copy. The
 * file is read only when the sizes agree, and a copy whose digest the server did not give is never
 * taken as identical.
 */
export const isIdentical = async (localPath: string, remote: { readonly size: number; readonly digest?: string }, algorithm: HashAlgorithm): Promise<boolean> => {
  if (remote.digest === undefined) return false;
  if (remote.size <= SYNC_COMPARE_MAX_BYTES) {
    const small = isIdenticalSmall(localPath, { size: remote.size, digest: remote.digest }, algorithm);
    if (small !== undefined) return small;
  }
  const handle = await fsp.open(localPath, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size !== remote.size) return false;
    const hash = await hashPrefix(handle, stats.size, algorithm);
    return hash?.hex() === remote.digest;
  } catch {
    return false;
  } finally {
    await handle.close().catch(() => undefined);
  }
};

/** Files compared at once: each holds a descriptor while it is hashed. */
const COMPARE_CONCURRENCY = 16;

/** `isIdentical` for many files, a few at a time (thousands at once would run out of descriptors). */
export const identicalFiles = async (
  pairs: readonly { readonly localPath: string; readonly remote?: { readonly size: number; readonly digest?: string } }[],
  algorithm: HashAlgorithm,
): Promise<boolean[]> => {
  const results = new Array<boolean>(pairs.length).fill(false);
  let next = 0;
  const worker = async () => {
    while (next < pairs.length) {
      const index = next++;
      const { localPath, remote } = pairs[index]!;
      results[index] = remote !== undefined && (await isIdentical(localPath, remote, algorithm));
    }
  };
  await Promise.all(Array.from({ length: Math.min(COMPARE_CONCURRENCY, pairs.length) }, worker));
  return results;
};
