import { Hash, createHash } from 'node:crypto';
import { read } from 'node:fs';
import { promisify } from 'node:util';

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
 * SHA-256 state after the first `length` bytes of an open file, read in 1 MiB pieces (big reads: see
 * TOOLCHAIN.md). Returns undefined if the file is shorter. The state is returned, not the digest, so
 * a resumed transfer can go on hashing the rest without reading the prefix again.
 */
export const hashPrefix = async (handle: PositionalReader, length: number): Promise<Hash | undefined> => {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(Math.min(HASH_CHUNK, Math.max(length, 1)));
  for (let position = 0; position < length; ) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) return undefined;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash;
};

/** The hex digest so far, leaving `hash` usable for more data. */
export const digestSoFar = (hash: Hash): string => hash.copy().digest('hex');
