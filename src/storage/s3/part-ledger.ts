/** A part S3 accepted: what CompleteMultipartUpload and a later resume need. */
export interface UploadedPart {
  readonly n: number;
  readonly size: number;
  readonly etag: string;
}

/** The first `parts` parts (in order, all accepted) and the hash state right after their bytes. */
export interface Checkpoint {
  readonly parts: readonly UploadedPart[];
  readonly bytes: number;
  readonly state?: Uint8Array;
}

interface Sealed {
  readonly n: number;
  readonly end: number;
  state?: Uint8Array;
  part?: UploadedPart;
}

/**
 * The parts of one multipart upload in the order they were cut, and which S3 has accepted. Parts
 * are sent several at once and may be accepted out of order; a resume can only start after a prefix
 * of parts that are all there, so the checkpoint is the longest such prefix.
 */
export class PartLedger {
  private readonly sealed: Sealed[] = [];
  private next: number;

  constructor(private readonly earlier: Checkpoint) {
    this.next = earlier.parts.length + 1;
  }

  /** Numbers the next part, which ends at byte `end`; once accepted, with the hash state there. */
  cut(end: number): { readonly n: number; accepted(size: number, etag: string, state?: Uint8Array): void } {
    const sealed: Sealed = { n: this.next++, end };
    this.sealed.push(sealed);
    return {
      n: sealed.n,
      accepted: (size, etag, state) => {
        sealed.state = state;
        sealed.part = { n: sealed.n, size, etag };
      },
    };
  }

  /** The longest accepted prefix (the earlier parts if none of this upload's are accepted yet). */
  checkpoint(): Checkpoint {
    let count = 0;
    while (count < this.sealed.length && this.sealed[count]!.part) count++;
    if (count === 0) return this.earlier;
    const last = this.sealed[count - 1]!;
    return { parts: [...this.earlier.parts, ...this.sealed.slice(0, count).map((sealed) => sealed.part!)], bytes: last.end, state: last.state };
  }

  /** Every part, in order (once all are accepted: at commit). */
  get parts(): UploadedPart[] {
    return [...this.earlier.parts, ...this.sealed.map((sealed) => sealed.part!)];
  }
}
