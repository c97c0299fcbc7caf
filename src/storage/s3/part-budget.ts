/** Idle part buffers kept for reuse: a part of 16 MiB freed to the GC costs RSS until V8 collects it. */
const POOLED_BUFFERS = 4;

/**
 * Bytes of part buffers the whole process may hold (`storage.s3.maxBufferedBytes`). An upload asks
 * for a buffer before it fills one; beyond the budget it waits, and since its sink then does not
 * complete the write, the pipeline's FlowControl holds its socket. Parts in flight always finish or
 * fail on their own, so waiting here cannot deadlock. Buffers of the usual part size are reused:
 * allocating a fresh 16 MiB per part left dead ones waiting for a GC (server peak 218 MiB for 1 GiB).
 */
export class PartBudget {
  private available: number;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];
  private readonly pool: Buffer[] = [];

  constructor(
    readonly total: number,
    private readonly pooledSize = 0,
  ) {
    this.available = total;
  }

  /** Resolves once `bytes` (at most the total) are reserved; first come, first served. */
  take(bytes: number): Promise<void> | undefined {
    const wanted = Math.min(bytes, this.total);
    if (this.waiting.length === 0 && wanted <= this.available) {
      this.available -= wanted;
      return undefined;
    }
    return new Promise((grant) => this.waiting.push({ bytes: wanted, grant }));
  }

  give(bytes: number): void {
    this.available += Math.min(bytes, this.total);
    while (this.waiting.length > 0 && this.waiting[0]!.bytes <= this.available) {
      const next = this.waiting.shift()!;
      this.available -= next.bytes;
      next.grant();
    }
  }

  /** A buffer of `bytes`, reserved in the budget (reused when one of that size is idle). */
  async acquire(bytes: number): Promise<Buffer> {
    await this.take(bytes);
    // Shared memory, so that a worker can hash the part without a copy (see CheckpointHashing).
    return (bytes === this.pooledSize && this.pool.pop()) || Buffer.from(new SharedArrayBuffer(bytes));
  }

  /** Gives back a buffer from `acquire`; its bytes may be overwritten from now on. */
  release(buffer: Buffer): void {
    if (buffer.length === this.pooledSize && this.pool.length < POOLED_BUFFERS) this.pool.push(buffer);
    this.give(buffer.length);
  }

  /** Bytes reserved right now (a gauge for tests). */
  get inUse(): number {
    return this.total - this.available;
  }
}
