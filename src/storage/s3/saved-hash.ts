import { IHasher, createBLAKE3, createSHA256 } from 'hash-wasm';
import type { HashAlgorithm, RunningHash } from '../../integrity/hash-algorithm';

/**
 * A running hash whose state can be written down and picked up by another process: what lets an
 * upload cut on one server continue on another. Node's own hashes (and the native BLAKE3 binding)
 * cannot export their state, so this uses hash-wasm's `save`/`load` (measured here: SHA-256 ≈ 280
 * MiB/s, BLAKE3 ≈ 490 MiB/s on one core; a state is 116 and 1,916 bytes). Same digests as Node's.
 */
export class SavedHash implements RunningHash {
  private constructor(
    readonly algorithm: HashAlgorithm,
    private readonly hasher: IHasher,
  ) {}

  static async start(algorithm: HashAlgorithm, state?: Uint8Array): Promise<SavedHash> {
    const hasher = algorithm === 'sha256' ? await createSHA256() : await createBLAKE3();
    hasher.init();
    if (state) hasher.load(state);
    return new SavedHash(algorithm, hasher);
  }

  update(bytes: Uint8Array): RunningHash {
    this.hasher.update(bytes);
    return this;
  }

  /** The digest so far; hashing may go on (digest() would end it, so a copy of the state is finished). */
  hex(): string {
    const state = this.hasher.save();
    const digest = this.hasher.digest('hex');
    this.hasher.init();
    this.hasher.load(state);
    return digest;
  }

  save(): Uint8Array {
    return this.hasher.save();
  }
}
