import { read } from 'node:fs';
import { promisify } from 'node:util';
import type { ResumePoint } from '../protocol/command';
import { HashAlgorithm, RunningHash, hashOf, startHash } from './hash-algorithm';

/** Positional reads, as a FileHandle has them (`readerOf` adapts a plain descriptor). */
export interface PositionalReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

const readFd = promisify(read);

/** A plain descriptor as a PositionalReader (for files whose fd a stream also writes through). */
export const readerOf = (fd: number): PositionalReader => ({
  read: (buffer, offset, length, position) => readFd(fd, buffer, offset, length, position),
});

const HASH_CHUNK = 1024 * 1024;

/**
 * Hash state after the first `length` bytes of an open file (fewer if it ends sooner: `bytes`),
 * read in 1 MiB pieces (big reads: see TOOLCHAIN.md).
 */
export const hashUpTo = async (handle: PositionalReader, length: number, algorithm: HashAlgorithm): Promise<{ hash: RunningHash; bytes: number }> => {
  const hash = startHash(algorithm);
  const buffer = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(length, 1)));
  let position = 0;
  while (position < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return { hash, bytes: position };
};

/**
 * Hash state after exactly the first `length` bytes of an open file; undefined if it is shorter.
 * The state is returned, not the digest, so a resumed transfer can go on hashing the rest without
 * reading the prefix again.
 */
export const hashPrefix = async (handle: PositionalReader, length: number, algorithm: HashAlgorithm): Promise<RunningHash | undefined> => {
  const { hash, bytes } = await hashUpTo(handle, length, algorithm);
  return bytes === length ? hash : undefined;
};

/** True if `data` starts with `from.offset` bytes whose digest is `from.digest` (a resume's proof). */
export const bufferHasPrefix = (data: Uint8Array, from: ResumePoint, algorithm: HashAlgorithm): boolean =>
  from.offset <= data.length && hashOf(algorithm, data.subarray(0, from.offset)) === from.digest;

/** `from.offset` if the open file's first `from.offset` bytes hash to `from.digest`, else 0. */
export const matchingPrefix = async (handle: PositionalReader, from: ResumePoint, algorithm: HashAlgorithm): Promise<number> => {
  const hash = await hashPrefix(handle, from.offset, algorithm);
  return hash && hash.hex() === from.digest ? from.offset : 0;
};
