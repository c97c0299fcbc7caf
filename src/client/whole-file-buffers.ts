/**
 * Buffers for files read whole before they are sent (up to WHOLE_FILE_MAX_BYTES, 1 MiB), reused
 * once the server has stored the file. A fresh buffer of that size is a fresh mapping of memory,
 * and every one of its pages faults in as it is read into: `put -r` of 200 × 1 MiB took 55,000
 * page faults and as much system CPU as user CPU (≈ 1 s each, bench/findings.md, issue 20).
 * Smaller buffers come from Node's pool or the malloc heap, which reuse memory already: not pooled.
 */
const POOLED_ABOVE_BYTES = 64 * 1024;

/** Idle buffers kept at most (a long-running library user keeps no more than this much). */
const MAX_IDLE = 8;

const idle: Buffer[] = [];
/** The memory of buffers handed out by `wholeFileBuffer` and not given back yet. */
const lent = new WeakSet<ArrayBufferLike>();

/**
 * A buffer of `bytes` to read a file into; a large one is part of a pooled buffer of `capacity`
 * bytes (the largest size ever asked for, the same at every call).
 */
export const wholeFileBuffer = (bytes: number, capacity: number): Buffer => {
  if (bytes <= POOLED_ABOVE_BYTES || bytes > capacity) return Buffer.allocUnsafe(bytes);
  const pooled = idle.pop();
  const buffer = pooled?.length === capacity ? pooled : Buffer.allocUnsafeSlow(capacity);
  lent.add(buffer.buffer);
  return buffer.subarray(0, bytes);
};

/**
 * Gives back a buffer from `wholeFileBuffer` (or a part of it); any other buffer is left alone. Only
 * once nothing refers to its bytes any more: for an upload, once the server confirmed the whole file
 * (so the socket has written every byte of it).
 */
export const recycleWholeFileBuffer = (data: Buffer): void => {
  if (!lent.delete(data.buffer)) return;
  if (idle.length < MAX_IDLE) idle.push(Buffer.from(data.buffer, 0, data.buffer.byteLength));
};
