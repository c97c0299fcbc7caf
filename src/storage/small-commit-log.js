// @ts-check
/**
 * The digest log of a folder: what the server knows of its small files' content, written by the
 * small-commit worker as it commits them (one append per folder per batch) and read by LIST and
 * STAT, which therefore never read a small file to show its digest. Plain JavaScript for the same
 * reason as small-commit.worker.js, which shares this file with the main thread (DigestLog).
 *
 * One JSON object per line, `{ n, s, m, i, h, d }`: the file's name in the folder, its size, mtime
 * (ms) and inode when the digest `d` (in algorithm `h`) was taken. A later line for a name replaces
 * an earlier one unless it describes the same version (same size, mtime and inode), whose digests
 * in other algorithms it then joins. A record is a cache, never the truth: it counts only while the
 * file's lstat still shows that size, mtime and inode (a file changed by other means has none). A
 * line that does not parse (cut by a crash: the log is not fsynced) is skipped.
 */
'use strict';
const { createHash } = require('node:crypto');
const { fstatSync, readSync } = require('node:fs');
const { join } = require('node:path');

/**
 * @typedef {{ s: number, m: number, i: number, d: Record<string, string> }} DigestRecord
 */

/**
 * The log of the folder with storage name `folderName` ('' for the root), in `sumsFolder`.
 * @param {string} sumsFolder
 * @param {string} folderName
 * @returns {string}
 */
const digestLogPath = (sumsFolder, folderName) => join(sumsFolder, createHash('sha256').update(folderName).digest('hex') + '.log');

/**
 * One line of the log (with its newline).
 * @param {string} name @param {number} size @param {number} mtimeMs @param {number} ino @param {string} hash @param {string} digest
 * @returns {string}
 */
const formatDigestLine = (name, size, mtimeMs, ino, hash, digest) => JSON.stringify({ n: name, s: size, m: mtimeMs, i: ino, h: hash, d: digest }) + '\n';

/**
 * Applies the complete lines of `text` to `records`, by name; returns how many records it touched.
 * @param {string} text
 * @param {Map<string, DigestRecord>} records
 * @returns {number}
 */
const applyDigestLines = (text, records) => {
  let applied = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    /** @type {{ n?: unknown, s?: unknown, m?: unknown, i?: unknown, h?: unknown, d?: unknown }} */
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const { n, s, m, i, h, d } = entry ?? {};
    if (typeof n !== 'string' || typeof s !== 'number' || typeof m !== 'number' || typeof i !== 'number' || typeof h !== 'string' || typeof d !== 'string') continue;
    const known = records.get(n);
    const record = known && known.s === s && known.m === m && known.i === i ? known : { s, m, i, d: {} };
    record.d[h] = d;
    if (record !== known) records.set(n, record);
    applied++;
  }
  return applied;
};

/**
 * A version of a file as fstat shows it: what a record keys (size, mtime, inode), and its ctime.
 * @typedef {{ size: number, mtimeMs: number, ino: number, ctimeMs: number }} SteadyVersion
 */

/**
 * The version \`before\` (fstat before a read), if \`after\` (fstat after it) shows the same one: ctime
 * too, which every write and every utimes moves and no writer can set back. Otherwise undefined: the
 * bytes read may mix two versions, and a digest of them must not be recorded for either (hostile
 * pass v: a writer that set mtime back after each rewrite had mixes recorded, a large file's for
 * good). Shared by the main thread and the small-read worker.
 * @param {SteadyVersion} before
 * @param {SteadyVersion} after
 * @returns {SteadyVersion | undefined}
 */
const steadyAcross = (before, after) =>
  before.size === after.size && before.mtimeMs === after.mtimeMs && before.ino === after.ino && before.ctimeMs === after.ctimeMs
    ? { size: before.size, mtimeMs: before.mtimeMs, ino: before.ino, ctimeMs: before.ctimeMs }
    : undefined;

/** A log is compacted once it has grown past this, and past twice its size after the last compaction. */
const COMPACT_FROM_BYTES = 64 * 1024;
/**
 * Nor beyond this (≈ 110,000 records): a compaction holds one record per name in the log, about two
 * bytes of heap per byte of log (a 16 MiB log compacts in a 40 MB heap, a 40 MiB one not in 64 MB:
 * measured), the commit worker's heap is capped (small-commits.ts), and the commits wait while it
 * runs (≈ 3 s for 16 MiB on a loaded 2-core machine). A bigger log only grows: its stale lines cost
 * disk bytes, never a wrong digest (a record counts only while the file's stat matches it).
 */
const COMPACT_UP_TO_BYTES = 16 * 1024 * 1024;

/** How many times over its size after a compaction a log grows before the next: a doubling, unless nextGrowth raised it. */
const DOUBLING = 2;
/** The most a log may grow over its size after a compaction before the next (see nextGrowth). */
const MAX_GROWTH = 8;

/**
 * The last size at which a log not yet due is compacted all the same, once it has grown by
 * LAST_CALL_GROWTH_BYTES since its last compaction: a log compacted at more than half of
 * COMPACT_UP_TO_BYTES would otherwise be due only past it, and a folder emptied and rewritten since
 * then (its records superseded) had its log grow for good (hostile pass 2026-12-07b). Below the
 * limit by more than any one append (a batch's records: ≈ 64 × 400 bytes at most).
 */
const LAST_CALL_BYTES = COMPACT_UP_TO_BYTES - 1024 * 1024;
const LAST_CALL_GROWTH_BYTES = 1024 * 1024;

/**
 * The size past which a log `base` bytes after its last compaction is due for the next: once it has
 * grown `growth` times over, yet never later than half the size past which no log is compacted, where
 * a doubling would still have compacted it, and never later than LAST_CALL_BYTES once it has grown by
 * LAST_CALL_GROWTH_BYTES: a raised factor, or a big base, must not leave a log that then fills with
 * superseded lines growing for good.
 * @param {number} base @param {number} growth
 * @returns {number}
 */
const nextCompactionPast = (base, growth) => {
  const grown = Math.max(DOUBLING * base, Math.min(growth * base, COMPACT_UP_TO_BYTES / 2));
  const lastCall = Math.max(LAST_CALL_BYTES, base + LAST_CALL_GROWTH_BYTES);
  return Math.min(grown, lastCall);
};

/**
 * Whether a log of `size` bytes, `base` bytes after its last compaction, is due for one (see
 * nextCompactionPast; `growth` from nextGrowth, a doubling for a log with no history).
 * @param {number} size @param {number} base @param {number} [growth]
 * @returns {boolean}
 */
const grownForCompaction = (size, base, growth = DOUBLING) => size > COMPACT_FROM_BYTES && size > nextCompactionPast(base, growth);

/**
 * The growth factor for a log's next compaction, from what its last one did (`before` → `after`
 * bytes): one that dropped less than a quarter of the log doubles it, up to MAX_GROWTH; one that
 * dropped more brings it back to 2. A folder filled once (one `put -r`) has a log of distinct names,
 * which a compaction only reads, checks and writes again: at every doubling, a put of 20,000 files
 * into one folder had 33,500 records looked up, ≈ 9 µs of the commit worker a file (issue 20,
 * bench/findings.md); raised, 17,700 (the worker's CPU for it 1.06 → 0.95 s), and each compaction
 * spared is a pause of the folder's commits. A folder whose files are replaced again and again leaves
 * mostly superseded lines, and keeps compacting at each doubling.
 * @param {number | undefined} growth the factor the log was compacted at (a doubling for one with no history)
 * @param {number} before @param {number} after
 * @returns {number}
 */
const nextGrowth = (growth = DOUBLING, before, after) => (after > 0.75 * before ? Math.min(2 * growth, MAX_GROWTH) : DOUBLING);

/**
 * The first line of a compacted log: its size then, so that any worker knows when it is due again (grownForCompaction).
 * Fixed width, written last over its place. Readers skip it (it is not a record: applyDigestLines).
 * @param {number} bytes
 */
const compactionHeader = (bytes) => `{"compacted":${String(bytes).padStart(15, ' ')}}\n`;
const HEADER_BYTES = compactionHeader(0).length;

/**
 * The log's size after its last compaction, from its header; 0 if it has none. `fd` must be readable.
 * @param {number} fd
 * @returns {number}
 */
const readCompactedSize = (fd) => {
  const head = Buffer.alloc(HEADER_BYTES);
  const read = readSync(fd, head, 0, HEADER_BYTES, 0);
  const m = /^\{"compacted": *(\d+)\}\n$/.exec(head.subarray(0, read).toString('latin1'));
  return m ? Number(m[1]) : 0;
};

/**
 * The stats of the log open on `fd`, which must be a regular file: a FIFO (or anything else) planted
 * under a log's name is refused, never written into or read from (it would hold the thread; logs are
 * opened O_NONBLOCK so that the open itself does not). Throws EINVAL; the caller closes `fd`.
 * @param {number} fd @param {string} log
 * @returns {import('node:fs').Stats}
 */
const regularLogStats = (fd, log) => {
  const stats = fstatSync(fd);
  if (!stats.isFile()) throw Object.assign(new Error(`${log} is not a regular file`), { code: 'EINVAL' });
  return stats;
};

module.exports = { digestLogPath, formatDigestLine, applyDigestLines, steadyAcross, COMPACT_FROM_BYTES, COMPACT_UP_TO_BYTES, LAST_CALL_BYTES, MAX_GROWTH, grownForCompaction, nextGrowth, compactionHeader, readCompactedSize, regularLogStats };
