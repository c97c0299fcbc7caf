import { promises as fsp } from 'node:fs';
import type { HashAlgorithm } from '../integrity/hash-algorithm';
import { hashPrefix } from '../integrity/hash-prefix';

/**
 * True if the local file has exactly the size and digest (in `algorithm`) the server reported for its copy. The
 * file is read only when the sizes agree, and a copy whose digest the server did not give is never
 * taken as identical.
 */
export const isIdentical = async (localPath: string, remote: { readonly size: number; readonly digest?: string }, algorithm: HashAlgorithm): Promise<boolean> => {
  if (remote.digest === undefined) return false;
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
