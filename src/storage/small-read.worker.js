// @ts-check
/**
 * The small-read worker (SmallReads starts it by path). Plain JavaScript for the same reason as
 * small-commit.worker.js: the same file runs from src/ and from dist/, and `@ts-check` has tsc check it.
 *
 * It receives batches of files to read — `{ id, path, within, limit, flags }` — and for each one opens
 * it (the flags it is given: no link followed, never waiting for a FIFO's writer), checks that what it
 * opened lies below `within` (as assertOpenedWithin in read-small-file.ts), fstats it and, if it is a
 * regular file of at most `limit` bytes, reads it whole into a buffer of its own, then closes it. It
 * replies once per batch with one result per file, in order: `{ id, mtimeMs, steady, body }` (`steady`:
 * the version read, if fstat saw the same one before and after a whole read; the body's
 * ArrayBuffer transferred, not copied), `{ id, large: true }`, `{ id, notFile: true }`,
 * `{ id, outside: true }` or `{ id, code, message }`.
 *
 * Synchronous calls on purpose: each costs a few microseconds here, where the main thread's callback
 * calls cost a thread-pool hand-off each (open, fstat, read, close: four per file, ≈ 25 % of a warm
 * server's `get -r` of small files; bench/findings.md). A read that never returns (a dead mount) stops
 * this thread, not the server's: SmallReads then sends later reads through the thread pool instead.
 */
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { openedWithin } = require('./fd-paths.js');
const { steadyAcross } = require('./small-commit-log.js');

/**
 * One file to read.
 * @typedef {{ id: number, path: string, within: string, limit: number, flags: number }} Job
 */
/**
 * What the main thread gets back for it.
 * @typedef {{ id: number, mtimeMs: number, steady: import('./small-commit-log.js').SteadyVersion | undefined, body: Uint8Array } | { id: number, large: true } | { id: number, notFile: true } | { id: number, outside: true } | { id: number, code: string, message: string }} Result
 */

if (!parentPort) throw new Error('small-read.worker.js runs as a worker thread (see small-reads.ts)');
const port = parentPort;


/**
 * Reads one file. What fstat saw is what is read: a file that grows meanwhile is cut there, one that
 * shrinks ends early (as the thread-pool path does: read-small-file.ts).
 * @param {Job} job
 * @returns {Result}
 */
const readOne = ({ id, path, within, limit, flags }) => {
  let fd;
  try {
    fd = fs.openSync(path, flags);
    // A folder swapped for a link after its check leads the open out of the root: refused.
    if (!openedWithin(fd, within)) return { id, outside: true };
    const stats = fs.fstatSync(fd);
    if (!stats.isFile()) return { id, notFile: true };
    if (stats.size > limit) return { id, large: true };
    // A buffer of its own (not Node's shared pool), so that it can be transferred.
    const body = new Uint8Array(stats.size);
    let length = 0;
    while (length < body.length) {
      const n = fs.readSync(fd, body, length, body.length - length, length);
      if (n === 0) break;
      length += n;
    }
    // The same version after the read as before (ctime too, which no writer can set back): the bytes
    // are that version's, and its digest may be recorded; otherwise another program wrote meanwhile,
    // and what was read may mix two versions (hostile pass v).
    let steady;
    try {
      steady = length === stats.size ? steadyAcross(stats, fs.fstatSync(fd)) : undefined;
    } catch {
      // A look that fails after a complete read costs only the record: the bytes are in hand.
    }
    return { id, mtimeMs: stats.mtimeMs, steady, body: length === body.length ? body : body.subarray(0, length) };
  } catch (err) {
    const { code, message } = /** @type {{ code?: string, message?: string }} */ (err ?? {});
    return { id, code: code || 'UNKNOWN', message: String(message || err) };
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // A close that fails after a complete read loses nothing: the bytes are in hand.
      }
    }
  }
};

port.on('message', (/** @type {Job[]} */ jobs) => {
  const results = jobs.map(readOne);
  /** @type {ArrayBuffer[]} */
  const transfer = [];
  for (const result of results) if ('body' in result) transfer.push(/** @type {ArrayBuffer} */ (result.body.buffer));
  port.postMessage(results, transfer);
});

// Ready: SmallReads sends nothing here before this, so that the first reads of a burst never wait
// for the thread to start (≈ 20–40 ms).
port.postMessage('ready');
