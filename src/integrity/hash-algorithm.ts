import { createHash } from 'node:crypto';

/**
 * The digests a transfer can be verified with. SHA-256 is the default: every tool (sha256sum,
 * browsers' download pages, package registries) can check it. BLAKE3 is offered because it costs
 * ≈ 0.1 s of CPU per GiB here against SHA-256's ≈ 0.5 s, and on a busy machine that CPU is the
 * transfer's speed limit; it is as strong (256-bit, cryptographic), just less widely installed.
 */
export const HASH_ALGORITHMS = ['sha256', 'blake3'] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];
export const DEFAULT_HASH: HashAlgorithm = 'sha256';

export const isHashAlgorithm = (value: string): value is HashAlgorithm => (HASH_ALGORITHMS as readonly string[]).includes(value);

/** A hash fed in order and readable at any point without ending it (a resume reads it mid-file). */
export interface RunningHash {
  readonly algorithm: HashAlgorithm;
  update(bytes: Uint8Array): RunningHash;
  /** Hex digest of everything so far; more can follow. */
  hex(): string;
}

class Sha256Hash implements RunningHash {
  readonly algorithm = 'sha256';
  private readonly state = createHash('sha256');

  update(bytes: Uint8Array): RunningHash {
    this.state.update(bytes);
    return this;
  }

  hex(): string {
    return this.state.copy().digest('hex');
  }
}

/** The subset of @napi-rs/blake-hash's Blake3Hasher we use (its digest does not end the hash). */
interface Blake3Hasher {
  update(input: Uint8Array): unknown;
  digest(format: 'hex'): string;
}

let blake3Native: (new () => Blake3Hasher) | null | undefined;

/**
 * The native BLAKE3 (SIMD; prebuilt for the common platforms, installed with the package), loaded on
 * first use so `rxfer --help` does not pay for it. null where no prebuilt binary fits this platform:
 * then BLAKE3 is simply not offered.
 */
const blake3Class = (): (new () => Blake3Hasher) | null => {
  if (blake3Native === undefined) {
    try {
      blake3Native = (require('@napi-rs/blake-hash') as { Blake3Hasher: new () => Blake3Hasher }).Blake3Hasher;
    } catch {
      blake3Native = null;
    }
  }
  return blake3Native;
};

class Blake3Hash implements RunningHash {
  readonly algorithm = 'blake3';
  private readonly state: Blake3Hasher;

  constructor(native: new () => Blake3Hasher) {
    this.state = new native();
  }

  update(bytes: Uint8Array): RunningHash {
    this.state.update(bytes);
    return this;
  }

  hex(): string {
    return this.state.digest('hex');
  }
}

/** The algorithms this process can compute: SHA-256 always, BLAKE3 where its native module loads. */
export const availableHashes = (): HashAlgorithm[] => (blake3Class() ? ['sha256', 'blake3'] : ['sha256']);

/** A fresh running hash. Asking for an algorithm `availableHashes` does not list is a programming error. */
export const startHash = (algorithm: HashAlgorithm): RunningHash => {
  if (algorithm === 'sha256') return new Sha256Hash();
  const native = blake3Class();
  if (!native) throw new Error('BLAKE3 is not available on this platform');
  return new Blake3Hash(native);
};

/** Hex digest of one buffer. */
export const hashOf = (algorithm: HashAlgorithm, bytes: Uint8Array): string => startHash(algorithm).update(bytes).hex();

/** How the algorithm is written on the wire (the data trailer, `SHA256 <hex>`) and in messages. */
export const hashLabel = (algorithm: HashAlgorithm): string => algorithm.toUpperCase();
