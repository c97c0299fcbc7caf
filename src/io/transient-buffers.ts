/**
 * Dead transfer buffers a process may leave to V8 before it collects them itself. Each socket read
 * is a fresh 64 KiB ArrayBuffer (each file read of a download one of up to 1 MiB), dead once it is
 * hashed and written. V8 frees such buffers only in a young-generation collection, and forces one
 * for them only once 32 MiB are outstanding (twice its default largest semi-space: heap.cc,
 * `AllocateExternalBackingStore`); the small JS objects that point at them fill the semi-space far
 * later. So every transfer left ≈ 32 MiB of dead buffers in the server's malloc heap. Collecting
 * the young generation every 8 MiB instead (one server, 1 GiB up and down, then 2,000 × 4 KiB and
 * 200 × 1 MiB, then 1 GiB up and down again): peaks 110–114 → 92–95 MiB, and 129–138 → 112–121
 * after the small files, at the same speed (bench/findings.md, "Dead socket buffers").
 */
export const TRANSIENT_BYTES_PER_COLLECTION = 8 * 1024 * 1024;

/**
 * V8's collector, present when node runs with `--expose-gc` (bin/rxfer.js and `npm start` pass it;
 * a program embedding the library without it keeps V8's own pace).
 */
const collect = typeof globalThis.gc === 'function' ? globalThis.gc : undefined;

let sinceCollection = 0;
/** Transfers moving bytes now (bodies being written to storage or sent to a peer). */
let moving = 0;

/**
 * Transfers at once beyond which collections are left to V8. A chunk lives until its transfer has
 * written or sent it, and with more transfers at once more bytes pass meanwhile; a chunk alive at two
 * collections moves to the old generation, which only a full collection frees. 16 concurrent uploads
 * collected every 8 MiB spent 2.3 s of 6.5 in the collector instead of 0.3 s; every 8 MiB per
 * transfer, still ≈ 8 % slower than V8's own pace; V8's pace kept them at 106–137 MiB, within the
 * 128 + 8 MiB per transfer they may use.
 */
const MAX_TRANSFERS_COLLECTED = 2;

/** A transfer starts moving bytes; call the returned function (idempotent) when it stops. */
export const transientTransferStarted = (): (() => void) => {
  moving++;
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    moving--;
  };
};

/**
 * Counts `bytes` of short-lived Buffers (dead once handled) and, while at most
 * MAX_TRANSFERS_COLLECTED transfers move, collects the young generation each time
 * TRANSIENT_BYTES_PER_COLLECTION per transfer have passed. A scavenge costs ≈ 0.5 ms here, far less
 * than moving 8 MiB; it runs synchronously, between two chunks.
 */
export const noteTransientBytes = (bytes: number): void => {
  if (collect === undefined) return;
  sinceCollection += bytes;
  if (moving > MAX_TRANSFERS_COLLECTED || sinceCollection < TRANSIENT_BYTES_PER_COLLECTION * Math.max(1, moving)) return;
  sinceCollection = 0;
  collect({ type: 'minor' });
};

/** Whether buffers are collected here (the process runs with --expose-gc). */
export const collectsTransientBuffers = (): boolean => collect !== undefined;
