/**
 * Preloaded into the real CLI (`NODE_OPTIONS=--require <this file>`) by
 * hostile-2026-12-06t-download-durable.test.ts: a folder's fsync fails for real, or waits, in the
 * CLI's own process, whichever way the client makes it (QuickFsync: `fs.fsyncSync` on the folder's
 * descriptor, or a FileHandle's `sync()` in the thread pool), and every folder fsync is recorded.
 *
 * Configured by the JSON in RXFER_HOSTILE_T:
 *   log:    a file; one JSON line per folder fsync: {path, k (its count for that path), failed, names (its entries), files}
 *   watch:  a folder whose files (recursively, "a/b" paths) each record lists as they were then
 *   faults: [{ path ('*': any folder under watch), has, minFiles, skip (default 0), times (default:
 *             every one after skip), code (an errno name; none: the fsync goes through), hold: { marker, go } }]
 *           A fault is for a folder fsync of its path that also meets its conditions: `has` (names),
 *           one of them among the folder's entries at that moment; `minFiles`, at least that many
 *           files under watch then, rxfer's own unfinished ones (".name.rxfer-…") not counted.
 *           `skip`/`times` count the fsyncs the fault is for (so a fault says "the fsync of p once
 *           the new folder b is in it", not "p's 3rd fsync", whose place the client may change).
 *           `hold`: the marker file is written, then the process waits (blocked) until `go` exists.
 *   holdFile: { suffix, marker, go }: a file's fsync whose path ends with suffix waits the same way (once).
 * Nothing but fsync is touched. The error thrown is shaped as Node's own (code, errno, syscall, message).
 */
'use strict';
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const util = require('node:util');
const { constants } = require('node:os');
const { join } = require('node:path');

const cfg = JSON.parse(process.env.RXFER_HOSTILE_T || '{}');
const faults = cfg.faults || [];
const perPath = new Map();
let fileHeld = false;

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const waitFor = (go) => {
  while (!fs.existsSync(go)) sleep(5);
};
const pathOf = (fd) => {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
};
const isFolder = (fd) => {
  try {
    return fs.fstatSync(fd).isDirectory();
  } catch {
    return false;
  }
};
const filesUnder = (folder) => {
  const out = [];
  const walk = (dir, prefix) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(join(dir, entry.name), rel);
      else out.push(rel);
    }
  };
  walk(folder, '');
  return out.sort();
};

/** An error as Node makes it for a failed fsync of a descriptor (no path in its message). */
const errnoError = (code) => {
  const errno = constants.errno[code];
  const desc = errno !== undefined ? util.getSystemErrorMap().get(-errno)?.[1] : undefined;
  return Object.assign(new Error(`${code}: ${desc ?? 'injected failure'}, fsync`), { code, errno: errno === undefined ? undefined : -errno, syscall: 'fsync' });
};

/** Files under watch (rxfer's own unfinished downloads not counted), for `minFiles`. */
const isUnfinished = (rel) => /(^|\/)\.[^/]*\.rxfer-[^/]*$/.test(rel);

/** Per fault, the folder fsyncs it was for so far (its `skip`/`times` count these). */
const seen = faults.map(() => 0);

/** A folder fsync about to be made: recorded; the error to fail it with, if any (after a hold, if any). */
const folderFsync = (path) => {
  const k = (perPath.get(path) || 0) + 1;
  perPath.set(path, k);
  const watched = cfg.watch !== undefined && (path === cfg.watch || path.startsWith(`${cfg.watch}/`));
  const files = cfg.watch ? filesUnder(cfg.watch) : [];
  let names = [];
  try {
    names = fs.readdirSync(path).sort();
  } catch {
    // Not listable: recorded without its entries.
  }
  let fault;
  faults.forEach((f, i) => {
    const on = f.path === '*' ? watched : f.path === path;
    if (!on || (f.has && !f.has.some((name) => names.includes(name)))) return;
    if (f.minFiles !== undefined && files.filter((rel) => !isUnfinished(rel)).length < f.minFiles) return;
    const count = ++seen[i];
    const skip = f.skip || 0;
    if (fault === undefined && count > skip && (f.times === undefined || count <= skip + f.times)) fault = f;
  });
  if (cfg.log) fs.appendFileSync(cfg.log, JSON.stringify({ path, k, failed: fault?.code ?? null, names, files }) + '\n');
  if (fault?.hold) {
    fs.writeFileSync(fault.hold.marker, `${process.pid}\n`);
    waitFor(fault.hold.go);
  }
  return fault?.code ? errnoError(fault.code) : undefined;
};

/** A file fsync about to be made: held once if its path ends as holdFile says. */
const fileFsync = (path) => {
  const hold = cfg.holdFile;
  if (!hold || fileHeld || path === undefined || !path.endsWith(hold.suffix)) return;
  fileHeld = true;
  fs.writeFileSync(hold.marker, `${process.pid}\n`);
  waitFor(hold.go);
};

const realFsyncSync = fs.fsyncSync;
fs.fsyncSync = function fsyncSync(fd) {
  if (isFolder(fd)) {
    const err = folderFsync(pathOf(fd) ?? `<fd ${fd}>`);
    if (err) throw err;
  } else fileFsync(pathOf(fd));
  return realFsyncSync(fd);
};

const realFsync = fs.fsync;
fs.fsync = function fsync(fd, callback) {
  if (isFolder(fd)) {
    const err = folderFsync(pathOf(fd) ?? `<fd ${fd}>`);
    if (err) return void setImmediate(() => callback(err));
  } else fileFsync(pathOf(fd));
  return realFsync(fd, callback);
};

const realOpen = fsp.open;
fsp.open = async function open(...args) {
  const handle = await realOpen(...args);
  const realSync = handle.sync.bind(handle);
  handle.sync = async () => {
    if (isFolder(handle.fd)) {
      const err = folderFsync(pathOf(handle.fd) ?? String(args[0]));
      if (err) throw err;
    } else fileFsync(pathOf(handle.fd));
    return realSync();
  };
  return handle;
};
