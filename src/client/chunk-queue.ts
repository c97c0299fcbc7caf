const NEWLINE = 0x0a;

/**
 * Received chunks not yet consumed. Slices without copying unless a read straddles chunks, and
 * remembers how far it already searched for a newline, so a line arriving byte by byte costs O(n).
 */
export class ChunkQueue {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  /** Chunks at the front already searched for a newline without finding one. */
  private scanned = 0;

  get length(): number {
    return this.bytes;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Bytes up to and including the first `\n`, or -1 while there is none. */
  lineLength(): number {
    let before = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      const at = i < this.scanned ? -1 : chunk.indexOf(NEWLINE);
      if (at >= 0) return before + at + 1;
      before += chunk.length;
      this.scanned = i + 1;
    }
    return -1;
  }

  /** At most `max` bytes from the front, never copied: for bodies, which go to a sink as they come. */
  takeFront(max: number): Buffer {
    return this.consume(Math.min(max, this.chunks[0]?.length ?? 0));
  }

  /** Removes the first `n` bytes (n ≤ length). */
  consume(n: number): Buffer {
    this.bytes -= n;
    this.scanned = 0;
    const first = this.chunks[0];
    if (first === undefined || n === 0) return Buffer.alloc(0);
    if (n === first.length) return this.chunks.shift()!;
    if (n < first.length) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    for (let filled = 0; filled < n; ) {
      const chunk = this.chunks[0]!;
      const take = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    return out;
  }
}
