// @ts-check
/**
 * The small-commit worker (SmallCommits starts it by path). Plain JavaScript, so that the same file
 * runs from src/ (ts-jest, tsx) and from dist/ (tsc copies it there: `allowJs`); it needs nothing
 * but `node:fs`, and `@ts-check` has tsc check it against Node's types.
 *
 * It receives batches of small files — `{ id, data, staging, target, folder, createOnly,
 * measureReplaced }` — and for each one: creates the staging file (`wx`), writes the data, fsyncs,
 * closes, and renames (or links, for create-only) over the real name. Then it fsyncs each folder of
 * the batch once, after all of the batch's renames into it: that one fsync makes all of them
 * durable. Replies `{ id, mtimeMs, replacedBytes }` or `{ id, code, message }` per file (with
 * `published` and the first reply's fields when the file is in place but its folder fsync failed), in one
 * message per batch; a failed file's staging file is deleted here. Before replying it appends each
 * committed file's digest to its folder's digest log (small-commit-log.js), one write per folder
 * per batch, so that LIST and STAT know it without reading the file; after replying it compacts a
 * log that grew (rewrites it without stale lines; a record the main thread appends meanwhile, as STAT
 * does for a file it had to hash, may be lost, which costs one more hashing of that file).
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
'use strict';
const { parentPort, threadId, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { basename, dirname, join } = require('node:path');
const { applyDigestLines, formatDigestLine, COMPACT_UP_TO_BYTES, grownForCompaction, nextGrowth, compactionHeader, readCompactedSize, regularLogStats } = require('./small-commit-log.js');
const { CAN_CHECK_OPENED, FD_PATHS, inServerFolderSync, notOpenedAt, openCheckedFolderSync, openServerFolderSync, pathTooLong } = require('./fd-paths.js');
const { FsyncPace } = require('../io/fsync-pace.js');

/**
 * One small file to commit (SmallCommitJob in small-commits.ts, plus its id), with where its digest goes.
 * @typedef {{ id: number, data: Uint8Array, staging: string, target: string, folder: string, createOnly: boolean, measureReplaced: boolean, sum?: { log: string, hash: string, digest: string } }} Job
 */
/**
 * What the main thread gets back for it.
 * @typedef {{ id: number, mtimeMs: number, replacedBytes: number, code?: undefined } | { id: number, code: string, message: string, linkOnTheWay?: true, serverFolder?: string, published?: boolean, mtimeMs?: number, replacedBytes?: number }} Reply
 */
/**
 * A job on its way through a batch; `line` is its digest record once it is committed.
 * @typedef {{ job: Job, fd: number | undefined, created: boolean, result: Reply | undefined, line?: string, stagingFd: number | undefined }} StagedFile
 */

if (!parentPort) throw new Error('small-commit.worker.js runs as a worker thread (see small-commits.ts)');
const port = parentPort;

/** Synchronous fsyncs while they are quick, side by side in the pool once they wait for a device (fsync-pace.js). */
const pace = new FsyncPace();
/** @param {number} fd @returns {Promise<unknown>} its error, undefined when it succeeded */
const fsyncInPool = (fd) => new Promise((resolve) => fs.fsync(fd, (err) => resolve(err ?? undefined)));

/**
 * fsyncs each fd; returns the error of each (undefined where it succeeded). Each fd asks the pace: the
 * synchronous ones (a probe among pooled ones included) are made at once, one by one, and the others
 * side by side in the pool. Asked once a batch, the pace counted batches, not fsyncs, between probes.
 * @param {number[]} fds
 * @returns {Promise<unknown[]>}
 */
const fsyncEach = async (fds) => {
  const errors = new Array(fds.length).fill(undefined);
  const pooled = [];
  for (const [i, fd] of fds.entries()) {
    if (pace.nextIsSync()) errors[i] = pace.timedSync(() => fs.fsyncSync(fd));
    else pooled.push(fsyncInPool(fd).then((err) => void (errors[i] = err)));
  }
  await Promise.all(pooled);
  return errors;
};

/**
 * A file's failure as the main thread is to map it (storageError), with the marks of a folder on the
 * way that is a link now and of the server's own folder failing (fd-paths.js), which a message
 * between threads would otherwise drop.
 * @param {StagedFile} file @param {unknown} err @returns {{ id: number, code: string, message: string, linkOnTheWay?: true, serverFolder?: string }}
 */
const failure = (file, err) => {
  const { code, message, linkOnTheWay, serverFolder } = /** @type {{ code?: string, message?: string, linkOnTheWay?: boolean, serverFolder?: string }} */ (err ?? {});
  return { id: file.job.id, code: code || 'UNKNOWN', message: String(message || err), ...(linkOnTheWay === true && { linkOnTheWay: true }), ...(serverFolder !== undefined && { serverFolder }) };
};

/**
 * A file renamed into place whose folder could not be fsynced: an error that says it is there, with
 * what a commit reports (the main thread answers NOT_DURABLE and counts it as stored).
 * @param {StagedFile} file @param {unknown} err @returns {Reply}
 */
const notSynced = (file, err) => {
  const placed = /** @type {{ mtimeMs: number, replacedBytes: number }} */ (file.result);
  return { ...failure(file, err), published: true, mtimeMs: placed.mtimeMs, replacedBytes: placed.replacedBytes };
};

/**
 * Creates the staging file and writes the data.
 * @param {Job} job
 * @param {StagingFolders} stagingFolders
 * @returns {StagedFile}
 */
const stage = (job, stagingFolders) => {
  /** @type {StagedFile} */
  const file = { job, fd: undefined, created: false, result: undefined, stagingFd: undefined };
  try {
    // In the staging folder opened and shown to be it (stagedPath): one swapped for a link since the
    // start would have the bytes written outside the root.
    if (CAN_CHECK_OPENED) {
      const folder = dirname(job.staging);
      let folderFd = stagingFolders.get(folder);
      if (folderFd === undefined) {
        folderFd = openServerFolderSync(folder);
        stagingFolders.set(folder, folderFd);
      }
      file.stagingFd = folderFd;
    }
    const fd = fs.openSync(stagedPath(file), 'wx', 0o644);
    file.fd = fd;
    file.created = true;
    const data = new Uint8Array(job.data);
    for (let at = 0; at < data.length; ) {
      const written = fs.writeSync(fd, data, at, data.length - at, at);
      // A device that takes nothing and reports no error would otherwise spin here for ever.
      if (written <= 0) throw Object.assign(new Error(`no bytes written at ${at}`), { code: 'ENOSPC' });
      at += written;
    }
  } catch (err) {
    fail(file, err);
  }
  return file;
};

/**
 * Folders whose fsync is reported as failed (EIO), for tests only (SmallCommits' `faults`): the
 * path of a commit whose file is in place but not durable cannot be reached otherwise.
 * @type {Set<string>}
 */
const failFolderFsyncs = new Set(/** @type {{ failFolderFsyncs?: string[] } | undefined} */ (workerData)?.failFolderFsyncs ?? []);

/**
 * Throws (ELOOP, or ENOENT if it was removed) unless what is open on `fd` is `path` itself: a folder
 * of the server's own (the staging area, the digest logs) or a user's folder swapped for a link would
 * lead it elsewhere (fd-paths.js).
 * @param {number} fd @param {string} path
 */
const assertUnder = (fd, path) => {
  const wrong = notOpenedAt(fd, path);
  if (wrong) throw wrong;
};

/**
 * The staging folders of one batch, each opened once and shown to be that folder (openServerFolderSync),
 * held from its first staging file's creation to the last rename out of it, then closed (commitBatch).
 * Per batch, not per worker: two batches overlap while one waits for its fsyncs.
 * @typedef {Map<string, number>} StagingFolders
 */

/**
 * The path of a staged file through the staging folder it was created in, for every call that reaches
 * it: the create, the rename or link into place, the unlink. By its path, a staging folder swapped for
 * a link mid-batch had the commit move a file of that name from outside the root into place and answer
 * OK with the digest of the bytes received (hostile pass u: staging names are guessable). Without
 * /proc (not Linux) the path as it is.
 * @param {StagedFile} file
 * @returns {string}
 */
const stagedPath = (file) => {
  if (!CAN_CHECK_OPENED) return file.job.staging;
  if (file.stagingFd === undefined) throw Object.assign(new Error('the staging folder is not open'), { code: 'EBADF' });
  return FD_PATHS + file.stagingFd + '/' + basename(file.job.staging);
};

/**
 * The batch's folders, opened before any rename into them and shown to be the folders that were
 * checked (each job's `folder` is its real path): a folder swapped for a link by someone with access
 * to the storage since the check would otherwise lead the rename out of the root (hostile pass i).
 * Renames then go through /proc/self/fd/<n>/, which stays in the folder opened; the folder fsync
 * after them uses the same descriptor. Without /proc (not Linux) the paths are used as they are.
 * @param {StagedFile[]} files
 * @returns {Map<string, { fd?: number, err?: unknown }>}
 */
const openFolders = (files) => {
  /** @type {Map<string, { fd?: number, err?: unknown }>} */
  const folders = new Map();
  for (const { job } of files) {
    if (folders.has(job.folder)) continue;
    try {
      // Through a link swapped in since the check, the same ELOOP whatever it leads to (hostile pass m);
      // removed meanwhile: ENOENT, which the main thread takes for a vanished folder (made again).
      folders.set(job.folder, { fd: openCheckedFolderSync(job.folder) });
    } catch (err) {
      folders.set(job.folder, { err });
    }
  }
  return folders;
};

/**
 * After the fsync: close, then rename (or link, for create-only) over the real name, into the
 * folder opened for it (`folderFd`; undefined: by its path).
 * @param {StagedFile} file
 * @param {number | undefined} folderFd
 */
const publish = (file, folderFd) => {
  const { job } = file;
  const target = CAN_CHECK_OPENED && folderFd !== undefined ? FD_PATHS + folderFd + '/' + basename(job.target) : job.target;
  try {
    // A name the system could not reach by its path afterwards is not made.
    const tooLong = pathTooLong(job.target);
    if (tooLong) throw tooLong;
    const fd = /** @type {number} */ (file.fd);
    // mtime survives the rename: read it now instead of a stat() afterwards. The size is the last
    // check before the name changes: a write whose failure went unseen never becomes a short file.
    const { mtimeMs, size, ino } = fs.fstatSync(fd);
    if (size !== job.data.byteLength) {
      throw Object.assign(new Error(`${size} bytes reached the disk of ${job.data.byteLength}`), { code: 'ESHORT' });
    }
    fs.closeSync(fd);
    file.fd = undefined;
    let replacedBytes = 0;
    if (job.measureReplaced && !job.createOnly) {
      try { replacedBytes = fs.lstatSync(target).size; } catch { /* nothing replaced */ }
    }
    if (job.createOnly) {
      // link() fails if the name exists: the atomic create-only that rename() cannot give. Once it
      // succeeded the file is in place: a failing unlink leaves a second link in the staging folder
      // (emptied at every start), never an error for a stored file.
      const staged = stagedPath(file);
      fs.linkSync(staged, target);
      try { fs.unlinkSync(staged); } catch { /* see above */ }
    } else {
      fs.renameSync(stagedPath(file), target);
    }
    file.result = { id: job.id, mtimeMs, replacedBytes };
    if (job.sum) file.line = formatDigestLine(basename(job.target), size, mtimeMs, ino, job.sum.hash, job.sum.digest);
  } catch (err) {
    fail(file, err);
  }
};

/**
 * Gives up on one file: closes it and deletes its staging file.
 * @param {StagedFile} file
 * @param {unknown} err
 */
const fail = (file, err) => {
  if (file.fd !== undefined) try { fs.closeSync(file.fd); } catch { /* already gone */ }
  file.fd = undefined;
  if (file.created) try { fs.unlinkSync(stagedPath(file)); } catch { /* renamed, or already gone */ }
  file.result = failure(file, err);
};

/** @param {Job[]} jobs */
const commitBatch = async (jobs) => {
  /** @type {StagingFolders} */
  const stagingFolders = new Map();
  const files = jobs.map((job) => stage(job, stagingFolders));
  const open = files.filter((file) => file.result === undefined);
  const fsyncErrors = await fsyncEach(open.map((file) => /** @type {number} */ (file.fd)));
  const opened = openFolders(open);
  open.forEach((file, i) => {
    const folder = /** @type {{ fd?: number, err?: unknown }} */ (opened.get(file.job.folder));
    if (fsyncErrors[i]) fail(file, fsyncErrors[i]);
    else if (folder.err !== undefined) fail(file, folder.err);
    else publish(file, folder.fd);
  });
  // Held from the first staging file's creation to the last rename out of it (stagedPath).
  for (const fd of stagingFolders.values()) try { fs.closeSync(fd); } catch { /* read-only: nothing to lose */ }
  // One fsync per folder, after every rename of the batch into it, makes them all durable.
  /** @type {Map<string, StagedFile[]>} */
  const folders = new Map();
  for (const file of files) {
    if (file.result?.code !== undefined) continue;
    const members = folders.get(file.job.folder) ?? [];
    members.push(file);
    folders.set(file.job.folder, members);
  }
  /** @type {{ fd: number, members: StagedFile[] }[]} */
  const handles = [];
  for (const [folder, members] of folders) handles.push({ fd: /** @type {number} */ (opened.get(folder)?.fd), members });
  const folderErrors = (await fsyncEach(handles.map((handle) => handle.fd))).map((err, i) =>
    err ?? (failFolderFsyncs.has(/** @type {StagedFile} */ (handles[i].members[0]).job.folder) ? Object.assign(new Error('EIO: injected folder fsync failure'), { code: 'EIO' }) : undefined));
  handles.forEach((handle, i) => {
    if (folderErrors[i]) for (const file of handle.members) file.result = notSynced(file, folderErrors[i]);
  });
  for (const { fd } of opened.values()) if (fd !== undefined) try { fs.closeSync(fd); } catch { /* nothing to lose */ }
  // The digests of the batch's files, one append per folder, before the replies: a LIST sent after
  // an upload's reply sees its digest.
  /** @type {Map<string, { folder: string, lines: string }>} */
  const logs = new Map();
  for (const file of files) {
    // A file in place whose folder fsync failed is in place all the same: its digest is recorded too.
    if (!file.line || !file.job.sum || (file.result?.code !== undefined && !file.result.published)) continue;
    const entry = logs.get(file.job.sum.log);
    if (entry) entry.lines += file.line;
    else logs.set(file.job.sum.log, { folder: file.job.folder, lines: file.line });
  }
  /** @type {{ log: string, folder: string }[]} */
  const grown = [];
  for (const [log, { folder, lines }] of logs) if (appendDigests(log, lines)) grown.push({ log, folder });
  port.postMessage({ replies: files.map((file) => file.result), compactionsStarted: grown.length, compactionsFinished: 0 });
  // Compactions after the replies: they cost time and memory in proportion to a whole folder, and
  // the batch's files are committed already. A compaction that failed, or even killed this thread,
  // must never turn the reply of a file that is in place into an error (issue 17: a folder of
  // 67,000 files made every batch into it end as EWORKER after its renames).
  for (const { log, folder } of grown) compactGrown(log, folder);
  if (grown.length > 0) port.postMessage({ replies: [], compactionsStarted: 0, compactionsFinished: grown.length });
  // Out of work: no descriptor stays open in a worker that may be terminated when idle.
  if (batch.length === 0) closeLogs();
};

// ---- digest logs -------------------------------------------------------------------------------

/**
 * Nor once it names more files than this: its records are what a compaction holds, and a log of
 * short records (not the server's: another tool's, or garbage) packs 300,000 names into 15 MiB,
 * which killed the worker (hostile-2026-12-04b-dense-log-oom). The server's own records are ≈ 150
 * bytes, so its 16 MiB logs stay under this.
 */
const COMPACT_UP_TO_NAMES = 120_000;
/** The log is read back this much at a time: never the whole file as one string. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** Logs kept open between batches of a burst (closed when the worker runs out of work). */
const MAX_OPEN_LOGS = 64;
/**
 * Size of each log after its last compaction, as its header says (see compactionHeader), so that a
 * worker started anew does not compact again a log it did not see grow.
 * @type {Map<string, number>}
 */
const compactedSize = new Map();
/**
 * Each log's growth factor for its next compaction (nextGrowth), from the compactions of this
 * worker's life; none (a doubling) for a log it has not compacted.
 * @type {Map<string, number>}
 */
const growthOf = new Map();
/** @param {string} log @param {number} size */
const dueForCompaction = (log, size) => grownForCompaction(size, compactedSize.get(log) ?? 0, growthOf.get(log));
/**
 * Open logs and their sizes: a burst of small uploads into one folder appends once per batch, and
 * an open/fstat/close per append cost more than the append (measured: ≈ 5 % of the server's CPU).
 * @type {Map<string, { fd: number, size: number }>}
 */
const openLogs = new Map();

/** @param {string} log */
const closeLog = (log) => {
  const open = openLogs.get(log);
  if (!open) return;
  openLogs.delete(log);
  try { fs.closeSync(open.fd); } catch { /* nothing to lose */ }
};

/** Closes every open log: fds are the process's, and a terminated worker would leave them open. */
const closeLogs = () => {
  for (const log of [...openLogs.keys()]) closeLog(log);
};

/**
 * Appends `lines` to the log in one write; true once the log has grown enough to be compacted. A
 * failure (a full disk) costs only the digests: LIST shows `-` for those files, and the commit stands.
 * @param {string} log @param {string} lines
 * @returns {boolean}
 */
const appendDigests = (log, lines) => {
  let open = openLogs.get(log);
  try {
    if (!open) {
      // Not through a link planted under the log's name (its path is derived from a folder's name):
      // ELOOP, and the batch's digests are lost, never written into the file it points at. Nor made
      // through the logs' folder swapped for a link: opened through that folder, opened and checked
      // (an empty log was made outside the root before the check below found it; hostile pass u).
      // Non-blocking, and only a regular file: a FIFO planted under the log's name is refused at its
      // open, not left to a read of its header to fail (ESPIPE) after a write into it.
      const flags = fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
      const fd = inServerFolderSync(dirname(log), (inside) => fs.openSync(join(inside, basename(log)), flags, 0o644));
      let found;
      try {
        found = regularLogStats(fd, log);
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      assertUnder(fd, log);
      open = { fd, size: found.size };
      openLogs.set(log, open);
      // A header can say no more than the log holds (one copied from elsewhere would stop its compactions for good).
      if (!compactedSize.has(log)) compactedSize.set(log, Math.min(readCompactedSize(fd), open.size));
      if (openLogs.size > MAX_OPEN_LOGS) closeLog(/** @type {string} */ (openLogs.keys().next().value));
    }
    open.size += fs.writeSync(open.fd, lines);
  } catch {
    closeLog(log);
    return false;
  }
  return dueForCompaction(log, open.size);
};

/**
 * Compacts a log that appendDigests (or the main thread: compactAsked) found grown, unless it is too
 * big to hold; either way its new base is remembered, so a failed or skipped compaction is tried
 * again only once it doubles.
 * @param {string} log @param {string} folder @param {number} [knownSize] its size as the asker saw it
 */
const compactGrown = (log, folder, knownSize = 0) => {
  const size = Math.max(openLogs.get(log)?.size ?? 0, knownSize);
  closeLog(log);
  if (size > COMPACT_UP_TO_BYTES) {
    compactedSize.set(log, size);
    return;
  }
  try {
    const compacted = compact(log, folder);
    compactedSize.set(log, compacted);
    growthOf.set(log, nextGrowth(growthOf.get(log), size, compacted));
  } catch {
    compactedSize.set(log, size);
  }
};

/**
 * Rewrites a log with the last word on each file (a name replaced many times leaves one line per
 * algorithm), keeping only records that still describe the file in the folder (same size, mtime and
 * inode): removed files and files changed by other means drop out. Read and written a chunk at a
 * time, so its memory is the records alone. Returns the new size.
 * @param {string} log @param {string} folder
 * @returns {number}
 */
const compact = (log, folder) => {
  /** @type {Map<string, import('./small-commit-log.js').DigestRecord>} */
  const records = new Map();
  forEachChunkOfLines(openLogToCompact(log), (text) => {
    applyDigestLines(text, records);
    // Given up before the temporary file exists; compactGrown then waits for the log to double.
    if (records.size > COMPACT_UP_TO_NAMES) throw Object.assign(new Error(`more than ${COMPACT_UP_TO_NAMES} names to compact`), { code: 'E2BIG' });
  });
  const temp = `${log}.${process.pid}-${threadId}.tmp`;
  let fd;
  try {
    // A fresh file (O_EXCL: never a link planted under the name, nor one left by a lost worker).
    try { fs.unlinkSync(temp); } catch { /* none */ }
    fd = fs.openSync(temp, 'wx', 0o644);
    assertUnder(fd, temp);
    let bytes = writeWhole(fd, compactionHeader(0));
    let chunk = '';
    for (const [name, record] of records) {
      const now = fs.lstatSync(join(folder, name), { throwIfNoEntry: false });
      if (!now?.isFile() || now.size !== record.s || now.mtimeMs !== record.m || now.ino !== record.i) continue;
      for (const [hash, digest] of Object.entries(record.d)) chunk += formatDigestLine(name, record.s, record.m, record.i, hash, digest);
      if (chunk.length >= READ_CHUNK_BYTES) {
        bytes += writeWhole(fd, chunk);
        chunk = '';
      }
    }
    if (chunk !== '') bytes += writeWhole(fd, chunk);
    writeWhole(fd, compactionHeader(bytes), 0);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, log);
    return bytes;
  } catch (err) {
    // A full disk must not leave a half-written log beside the real one (the real one is intact).
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* nothing to lose */ }
    try { fs.unlinkSync(temp); } catch { /* never made */ }
    throw err;
  }
};

/**
 * Writes all of `text` (at `position`, or where the file stands), or throws: a short write (a disk
 * filling up) would otherwise put a log cut short in place of the whole one, its last records gone.
 * @param {number} fd @param {string} text @param {number} [position]
 * @returns {number} the bytes written
 */
const writeWhole = (fd, text, position) => {
  const data = Buffer.from(text, 'utf8');
  const written = fs.writeSync(fd, data, 0, data.length, position ?? null);
  if (written !== data.length) throw Object.assign(new Error(`${written} of ${data.length} bytes written`), { code: 'ENOSPC' });
  return written;
};

/**
 * The log, opened to be compacted: what is there now under its name, which may not be what grew (the
 * main thread's request waits in the queue meanwhile, and someone with a shell on the storage may
 * have put anything there). Only a regular file of at most COMPACT_UP_TO_BYTES is read: a FIFO held
 * this thread, and every small commit with it, at its open; a huge file (sparse: free to make) had it
 * read for minutes (hostile pass w). Opened non-blocking, and the descriptor checked is the one read.
 * @param {string} log
 * @returns {number} the open descriptor (forEachChunkOfLines closes it)
 */
const openLogToCompact = (log) => {
  const fd = fs.openSync(log, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    if (regularLogStats(fd, log).size > COMPACT_UP_TO_BYTES) throw Object.assign(new Error(`${log} is larger than ${COMPACT_UP_TO_BYTES} bytes`), { code: 'EFBIG' });
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
};

/** Longer than any record (≈ 150 bytes): a line this long is not one, and is not carried further. */
const MAX_LINE_BYTES = 64 * 1024;

/**
 * Calls `apply` with the complete lines read from `fd` (then closed), READ_CHUNK_BYTES at a time (a
 * line cut by the chunk's end goes with the next; one cut by a crash at the very end is left, as
 * applyDigestLines would). A line longer than MAX_LINE_BYTES is dropped as it is read, not carried:
 * carried whole, a log without newlines was copied again for every chunk.
 * @param {number} fd @param {(text: string) => void} apply
 */
const forEachChunkOfLines = (fd, apply) => {
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let carry = Buffer.alloc(0);
    // Inside a line too long to be a record: what comes up to the next newline is dropped.
    let skipping = false;
    for (let at = 0; ; ) {
      const read = fs.readSync(fd, buffer, 0, buffer.length, at);
      if (read === 0) break;
      at += read;
      let data = carry.length > 0 ? Buffer.concat([carry, buffer.subarray(0, read)]) : buffer.subarray(0, read);
      if (skipping) {
        const newline = data.indexOf(0x0a);
        if (newline < 0) continue;
        data = data.subarray(newline + 1);
        skipping = false;
      }
      const end = data.lastIndexOf(0x0a) + 1;
      apply(data.subarray(0, end).toString('utf8'));
      skipping = data.length - end > MAX_LINE_BYTES;
      carry = skipping ? Buffer.alloc(0) : Buffer.from(data.subarray(end));
    }
  } finally {
    fs.closeSync(fd);
  }
};

/**
 * A log the main thread grew (digests of files hashed on demand: DigestIndex.remember) and found due
 * for a compaction; compacted here, where this thread's capped heap bounds what a compaction holds.
 * Not again until it is due by this worker's own measure (dueForCompaction), whatever the asker saw.
 * @param {{ log: string, folder: string, size: number }} asked
 */
const compactAsked = ({ log, folder, size }) => {
  if (dueForCompaction(log, size)) compactGrown(log, folder, size);
  port.postMessage({ replies: [], compactionsStarted: 0, compactionsFinished: 1, compacted: log });
};

// Files that arrived together are committed together: more renames share each folder fsync.
/** @type {Job[]} */
let batch = [];
port.on('message', (/** @type {Job[] | { compact: { log: string, folder: string, size: number } }} */ message) => {
  if (!Array.isArray(message)) {
    setImmediate(() => compactAsked(message.compact));
    return;
  }
  const jobs = message;
  if (batch.length === 0) setImmediate(() => {
    const jobs = batch;
    batch = [];
    void commitBatch(jobs);
  });
  for (const job of jobs) batch.push(job);
});
