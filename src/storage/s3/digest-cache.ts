import type { HashAlgorithm } from '../../integrity/hash-algorithm';
import { digestMetaKey } from './s3-keys';

interface Known {
  readonly etag: string;
  readonly size: number;
  readonly digests: Partial<Record<HashAlgorithm, string>>;
}

/** Entries kept (≈ 300 bytes each): a LIST of this many files needs no HEAD the second time. */
const MAX_ENTRIES = 100_000;

/**
 * Digests this process has seen, by key and ETag: the truth is the object's metadata, written with
 * it at commit; this only spares the HEAD per file that LIST would otherwise cost (ListObjectsV2
 * returns ETags but no metadata). An object replaced by any instance has a new ETag (or size), so an
 * entry never describes content it was not computed for. Per instance, bounded, least recent first out.
 */
export class DigestCache {
  private readonly entries = new Map<string, Known>();

  get(key: string, etag: string, size: number, algorithm: HashAlgorithm): string | undefined {
    const known = this.entries.get(key);
    if (!known || known.etag !== etag || known.size !== size) return undefined;
    this.entries.delete(key);
    this.entries.set(key, known);
    return known.digests[algorithm];
  }

  remember(key: string, etag: string, size: number, digests: Partial<Record<HashAlgorithm, string>>): void {
    const before = this.entries.get(key);
    const merged = before && before.etag === etag && before.size === size ? { ...before.digests, ...digests } : digests;
    this.entries.delete(key);
    this.entries.set(key, { etag, size, digests: merged });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}

/** The digests an object's metadata carries (`x-amz-meta-rxfer-sha256`, …). */
export const digestsInMetadata = (metadata: Record<string, string> | undefined): Partial<Record<HashAlgorithm, string>> => {
  const digests: Partial<Record<HashAlgorithm, string>> = {};
  for (const algorithm of ['sha256', 'blake3'] as const) {
    const value = metadata?.[digestMetaKey(algorithm)];
    if (value && /^[0-9a-f]{64}$/.test(value)) digests[algorithm] = value;
  }
  return digests;
};
