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

/** What we use of the BLAKE3 binding: its streaming hasher (whose digest does not end it) and one-shot function. */
interface Blake3Native {
  readonly Blake3Hasher: new () => { update(input: Uint8Array): unknown; digest(format: 'hex'): string };
  blake3(input: Uint8Array): Buffer;
}

/**
 * The prebuilt native BLAKE3 bindings (SIMD) of @napi-rs/blake-hash, one package per platform,
 * installed as optional dependencies: npm installs the one that fits (glibc or musl) and skips the
 * other. Only the Linux x64 builds are listed, because the registry this project installs from
 * serves only those; elsewhere BLAKE3 is simply not offered and SHA-256 is used.
 */
const BLAKE3_BINDINGS = ['@napi-rs/blake-hash-linux-x64-gnu', '@napi-rs/blake-hash-linux-x64-musl'];

let blake3Native: Blake3Native | null | undefined;

/** The binding, loaded on first use (so `rxfer --help` does not pay for it); null where none loads. */
const loadBlake3 = (): Blake3Native | null => {
  if (blake3Native === undefined) {
    blake3Native = null;
    for (const binding of BLAKE3_BINDINGS) {
      try {
        blake3Native = require(binding) as Blake3Native;
        break;
      } catch {
        // Not installed on this platform, or built for another libc: try the next.
      }
    }
  }
  return blake3Native;
};

/**
 * Below this many bytes a BLAKE3 hash keeps a copy of its input and hashes it in one call when read:
 * a native streaming hasher costs ≈ 6 µs to create, more than hashing 4 KiB, and thousands of small
 * files each make one. Copied, because callers reuse their buffers (reads into one scratch buffer).
 */
const BLAKE3_DEFERRED_BYTES = 64 * 1024;

class Blake3Hash implements RunningHash {
  readonly algorithm = 'blake3';
  private streaming: InstanceType<Blake3Native['Blake3Hasher']> | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly native: Blake3Native) {}

  update(bytes: Uint8Array): RunningHash {
    if (!this.streaming && this.pendingBytes + bytes.length <= BLAKE3_DEFERRED_BYTES) {
      this.pending.push(Buffer.from(bytes));
      this.pendingBytes += bytes.length;
      return this;
    }
    if (!this.streaming) {
      this.streaming = new this.native.Blake3Hasher();
      for (const piece of this.pending) this.streaming.update(piece);
      this.pending = [];
    }
    this.streaming.update(bytes);
    return this;
  }

  hex(): string {
    if (this.streaming) return this.streaming.digest('hex');
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    return this.native.blake3(all).toString('hex');
  }
}

/** The algorithms this process can compute: SHA-256 always, BLAKE3 where its native module loads. */
export const availableHashes = (): HashAlgorithm[] => (loadBlake3() ? ['sha256', 'blake3'] : ['sha256']);

/** A fresh running hash. */
export const startHash = (algorithm: HashAlgorithm): RunningHash => {
  if (algorithm === 'sha256') return new Sha256Hash();
  return new Blake3Hash(requireBlake3());
};

/** Asking for BLAKE3 where `availableHashes` does not list it is a programming error. */
const requireBlake3 = (): Blake3Native => {
  const native = loadBlake3();
  if (!native) throw new Error('BLAKE3 is not available on this platform');
  return native;
};

/** Hex digest of one buffer. */
export const hashOf = (algorithm: HashAlgorithm, bytes: Uint8Array): string =>
  algorithm === 'blake3' ? requireBlake3().blake3(bytes).toString('hex') : createHash('sha256').update(bytes).digest('hex');

/**
 * How an algorithm is written on the wire (the data trailer, `SHA256 <hex>`) and in messages; also
 * for names a server offers that this build does not know.
 */
export const hashLabel = (algorithm: HashAlgorithm | string): string => algorithm.toUpperCase();
