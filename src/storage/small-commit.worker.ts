/**
 * The commit worker's code, run with `new Worker(source, { eval: true })`. It is a string, not a
 * module path, because the same code must start under tsc's dist/, ts-jest and tsx alike (only one
 * of them has a .js file to point at), and it needs nothing but `node:fs`.
 *
 * It receives batches of small files — `{ id, data, staging, target, folder, createOnly,
 * measureReplaced }` — and for each one: creates the staging file (`wx`), writes the data, fsyncs,
 * closes, and renames (or links, for create-only) over the real name. Then it fsyncs each folder of
 * the batch once, after all of the batch's renames into it: that one fsync makes all of them
 * durable. Replies `{ id, mtimeMs, replacedBytes }` or `{ id, code, message }` per file, in one
 * message per batch; a failed file's staging file is deleted here.
 *
 * Synchronous calls on purpose: in this thread they block nothing else, and each one costs a few
 * microseconds where the main thread's async fs calls cost a threadpool hand-off each (≈ 115 µs of
 * CPU per small file for open/write/fsync/fstat/close/rename, against ≈ 13 µs here, on tmpfs).
 * Except fsync where it waits for a device: fsyncs one after the other would then cost one journal
 * commit each (2,000 small files to this machine's ext4 disk: 1,580 → 740 files/s, measured), so
 * once fsyncs are seen to take long the batch's fsyncs run side by side in the threadpool, and the
 * file system merges them into few commits. Batches may then overlap; each still fsyncs its folders
 * after its own renames.
 */
export const SMALL_COMMIT_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');

// fsync duration (µs, moving average) above which fsyncs run side by side: tmpfs takes ~1 µs.
const SLOW_FSYNC_US = 100;
let fsyncUs = 0;
const timed = (started) => {
  fsyncUs = 0.8 * fsyncUs + 0.2 * (Number(process.hrtime.bigint() - started) / 1000);
};
const fsyncAsync = (fd) => new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));

/** fsyncs each fd; returns the error of each (undefined where it succeeded). */
const fsyncEach = async (fds) => {
  if (fsyncUs < SLOW_FSYNC_US) {
    return fds.map((fd) => {
      const started = process.hrtime.bigint();
      try { fs.fsyncSync(fd); } catch (err) { return err; } finally { timed(started); }
      return undefined;
    });
  }
  return Promise.all(fds.map((fd) => {
    const started = process.hrtime.bigint();
    return fsyncAsync(fd).then(() => timed(started), (err) => err);
  }));
};

const failure = (file, err) => ({ id: file.job.id, code: (err && err.code) || 'UNKNOWN', message: String((err && err.message) || err) });

/** Creates the staging file and writes the data. */
const stage = (job) => {
  const file = { job, fd: undefined, created: false, result: undefined };
  try {
    file.fd = fs.openSync(job.staging, 'wx', 0o644);
    file.created = true;
    const data = new Uint8Array(job.data);
    for (let at = 0; at < data.length; ) at += fs.writeSync(file.fd, data, at, data.length - at, at);
  } catch (err) {
    fail(file, err);
  }
  return file;
};

/** After the fsync: close, then rename (or link, for create-only) over the real name. */
const publish = (file) => {
  const { job } = file;
  try {
    // mtime survives the rename: read it now instead of a stat() afterwards.
    const { mtimeMs } = fs.fstatSync(file.fd);
    fs.closeSync(file.fd);
    file.fd = undefined;
    let replacedBytes = 0;
    if (job.measureReplaced && !job.createOnly) {
      try { replacedBytes = fs.statSync(job.target).size; } catch { /* nothing replaced */ }
    }
    if (job.createOnly) {
      // link() fails if the name exists: the atomic create-only that rename() cannot give.
      fs.linkSync(job.staging, job.target);
      fs.unlinkSync(job.staging);
    } else {
      fs.renameSync(job.staging, job.target);
    }
    file.result = { id: job.id, mtimeMs, replacedBytes };
  } catch (err) {
    fail(file, err);
  }
};

/** Gives up on one file: closes it and deletes its staging file. */
const fail = (file, err) => {
  if (file.fd !== undefined) try { fs.closeSync(file.fd); } catch { /* already gone */ }
  file.fd = undefined;
  if (file.created) try { fs.unlinkSync(file.job.staging); } catch { /* renamed, or already gone */ }
  file.result = failure(file, err);
};

const commitBatch = async (jobs) => {
  const files = jobs.map(stage);
  const open = files.filter((file) => file.result === undefined);
  const fsyncErrors = await fsyncEach(open.map((file) => file.fd));
  open.forEach((file, i) => (fsyncErrors[i] ? fail(file, fsyncErrors[i]) : publish(file)));
  // One fsync per folder, after every rename of the batch into it, makes them all durable.
  const folders = new Map();
  for (const file of files) {
    if (file.result.code !== undefined) continue;
    if (!folders.has(file.job.folder)) folders.set(file.job.folder, []);
    folders.get(file.job.folder).push(file);
  }
  const handles = [];
  for (const [folder, members] of folders) {
    try {
      handles.push({ fd: fs.openSync(folder, 'r'), members });
    } catch (err) {
      for (const file of members) file.result = failure(file, err);
    }
  }
  const folderErrors = await fsyncEach(handles.map((handle) => handle.fd));
  handles.forEach((handle, i) => {
    try { fs.closeSync(handle.fd); } catch { /* nothing to lose */ }
    if (folderErrors[i]) for (const file of handle.members) file.result = failure(file, folderErrors[i]);
  });
  parentPort.postMessage(files.map((file) => file.result));
};

// Files that arrived together are committed together: more renames share each folder fsync.
let batch = [];
parentPort.on('message', (jobs) => {
  if (batch.length === 0) setImmediate(() => {
    const jobs = batch;
    batch = [];
    commitBatch(jobs);
  });
  for (const job of jobs) batch.push(job);
});
`;
