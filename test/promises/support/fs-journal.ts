/**
 * A journal of the durability calls this process makes: fsync of a descriptor (a file's, or a
 * folder's, as a commit syncs the folder it renamed into), fsync of a FileHandle (how FolderSync
 * syncs folders), rename and link, asynchronous or synchronous. A crash cannot be simulated in a test, so
 * this is the one honest way to see *that* and *in which order* the server makes a commit durable:
 * it wraps the real `node:fs` functions (they still run) and notes each call with the path behind
 * its descriptor (/proc/self/fd, Linux).
 *
 * Import this module BEFORE anything from src/: local-staged-write.ts takes `promisify(fsync)` when
 * it loads, so a wrapper installed later would not be seen. The small-file commits run in a worker
 * thread (its own `fs`), which this journal cannot see; see test/MUTATION.md.
 */
import fs = require('node:fs');
import fsp = require('node:fs/promises');
import { pathOfFd, realPathOf } from './fd-path';

export type JournalEntry =
  | { readonly op: 'fsync'; readonly path: string }
  | { readonly op: 'rename' | 'link'; readonly from: string; readonly to: string };

export const journal: JournalEntry[] = [];

type Callback = (err: NodeJS.ErrnoException | null) => void;
const realFsync = fs.fsync;
const realRename = fsp.rename;
const realLink = fsp.link;
const realRenameSync = fs.renameSync;
const realLinkSync = fs.linkSync;

// Noted when the call succeeded: only a finished fsync makes anything durable.
const journaledFsync = (fd: number, callback: Callback): void => {
  const path = pathOfFd(fd);
  realFsync(fd, (err) => {
    if (!err) journal.push({ op: 'fsync', path });
    callback(err);
  });
};
(fs as { fsync: unknown }).fsync = journaledFsync;
(fsp as { rename: typeof fsp.rename }).rename = async (from, to) => {
  const target = realPathOf(to);
  const source = realPathOf(from);
  await realRename(from, to);
  journal.push({ op: 'rename', from: source, to: target });
};
(fsp as { link: typeof fsp.link }).link = async (from, to) => {
  const target = realPathOf(to);
  const source = realPathOf(from);
  await realLink(from, to);
  journal.push({ op: 'link', from: source, to: target });
};
// A large upload's commit renames (or links) synchronously on the main thread (local-staged-write.ts).
(fs as { renameSync: unknown }).renameSync = (from: fs.PathLike, to: fs.PathLike): void => {
  const target = realPathOf(to);
  realRenameSync(from, to);
  journal.push({ op: 'rename', from: String(from), to: target });
};
(fs as { linkSync: unknown }).linkSync = (from: fs.PathLike, to: fs.PathLike): void => {
  const target = realPathOf(to);
  realLinkSync(from, to);
  journal.push({ op: 'link', from: String(from), to: target });
};

let realHandleSync: (() => Promise<void>) | undefined;
let handleProto: { sync: () => Promise<void> } | undefined;

/** FileHandle is not exported: its prototype is found through a handle, then `sync` is wrapped. */
export const watchHandleSyncs = async (): Promise<void> => {
  const handle = await fsp.open(__filename, 'r');
  handleProto = Object.getPrototypeOf(handle) as { sync: () => Promise<void> };
  await handle.close();
  const real = (realHandleSync = handleProto.sync);
  handleProto.sync = async function (this: fsp.FileHandle) {
    const path = pathOfFd(this.fd);
    await real.call(this);
    journal.push({ op: 'fsync', path });
  };
};

/** Puts the real functions back (afterAll). */
export const restoreFs = (): void => {
  (fs as { fsync: unknown }).fsync = realFsync;
  (fsp as { rename: typeof fsp.rename }).rename = realRename;
  (fsp as { link: typeof fsp.link }).link = realLink;
  (fs as { renameSync: unknown }).renameSync = realRenameSync;
  (fs as { linkSync: unknown }).linkSync = realLinkSync;
  if (handleProto && realHandleSync) handleProto.sync = realHandleSync;
};
