import { lstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferError, toRxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import { wireName } from './request-header';
import type { TransferResult } from './client-options';
import type { RxferClient } from './rxfer-client';
import { type FileFailure, type TreeOptions, type TreeResult, treeFailure } from './download-tree';
import { identicalFiles } from './identical';
import { FileWindow } from './file-window';
import { WHOLE_FILE_MAX_BYTES, openSource, readWhole } from './upload-file.request';
import type { ListingEntry } from '../protocol/listing';

/** Small files in flight at once (read into memory, sent, awaiting replies): bounds memory. */
const WINDOW_FILES = 64;

/**
 * Read ahead of their turn to send (up to WINDOW_FILES at once), synchronously up to
 * SYNC_READ_MAX_BYTES: in `put -r` of many small files the four thread-pool round trips of an async
 * readFile were most of the client's time (2,000 × 4 KiB to tmpfs: 3,086–3,373 → 4,474 files/s).
 * Read as `upload()` reads a small file: whole, and again if it was written to meanwhile.
 */
const readSmall = (file: LocalFile): Promise<Buffer> => Promise.resolve().then(() => readWhole(openSource(file.path), file.path));

interface LocalFile {
  readonly path: string;
  readonly name: string;
  readonly size: number;
}

/** A local file and the name it gets on the server. */
interface PlannedFile extends LocalFile {
  readonly remote: string;
}

/** Regular files below `folder`; links are not followed (a link out of the tree is not the tree). */
const walk = async (folder: string, prefix: string, out: LocalFile[]): Promise<void> => {
  const entries = await readdir(folder, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(folder, entry.name);
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) await walk(path, name, out);
    // Synchronous (a few µs): an awaited lstat per file was a thread-pool round trip each.
    else if (entry.isFile()) out.push({ path, name, size: lstatSync(path).size });
  }
};

/**
 * `put -r`: uploads every file below `localDir` as `remoteFolder/<relative path>`. All names are
 * checked before anything is sent; small files are pipelined on the one connection (no round trip
 * per file), each still verified and committed atomically by the server; large ones are streamed.
 * A file that fails (changed while it was read, refused by the server) does not stop the others; the
 * error that ends it names the ones that failed, once all the others are done.
 */
export const uploadTree = async (
  client: RxferClient,
  localDir: string,
  remoteFolder: string,
  options: TreeOptions & { onFile?: (name: string, result: TransferResult) => void } = {},
): Promise<TreeResult> => {
  const files: LocalFile[] = [];
  await walk(localDir, '', files).catch((err: NodeJS.ErrnoException) => {
    throw new RxferError('LOCAL_IO', `cannot read ${localDir}: ${err.code ?? err.message}`);
  });
  const folder = remoteFolder.replace(/\/+$/, '');
  const planned = files.map((file) => {
    const remote = folder === '' ? file.name : `${folder}/${file.name}`;
    try {
      // NFC, as sent: skip-existing compares with the server's listing, which holds NFC names.
      return { ...file, remote: wireName(remote) };
    } catch (err) {
      throw new RxferError('NAME_INVALID', `${printableName(file.path)} cannot be sent: ${(err as Error).message}`);
    }
  });
  // One LIST tells what the server has (size and digest): identical files are not sent.
  const remote = options.skipIdentical === false ? new Map<string, ListingEntry>() : await listedByName(client, folder);
  const identical = await identicalFiles(planned.map((file) => ({ localPath: file.path, remote: remote.get(file.remote) })), client.hash);
  const wanted = planned.filter((_, index) => !identical[index]);
  let bytes = 0;
  const failures: FileFailure[] = [];
  const window = new FileWindow(WINDOW_FILES);
  let sent = 0;
  for (const [index, file] of wanted.entries()) {
    await window.free();
    // Lost: every request after this fails alike. The ones in flight report it; the rest are not sent.
    if (client.isClosed) break;
    sent++;
    const sending =
      file.size <= WHOLE_FILE_MAX_BYTES
        ? readSmall(file).then((data) => client.uploadBuffer(file.remote, data))
        : file.size <= PIPELINED_MAX_BYTES
          ? uploadPipelined(client, file, options.resume !== false)
          : client.upload(file.path, file.remote, { resume: options.resume });
    // A file that fails (changed while read, refused by the server) is reported at the end; the
    // others go on, as with rsync or cp -r.
    window.add(
      sending.then(
        (result) => {
          bytes += result.size;
          options.onFile?.(file.remote, result);
        },
        (err: unknown) => void failures.push({ index, name: file.path, error: toRxferError(err) }),
      ),
    );
  }
  await window.drained();
  if (failures.length > 0) throw treeFailure('stored', wanted.length, failures, wanted.length - sent);
  return { files: wanted.length, bytes, skipped: planned.length - wanted.length };
};

/**
 * Larger files up to this size are sent without waiting for `OK file recv` (see uploadPipelined): a
 * refusal costs at most this much on the wire. Beyond it, a file waits, and a refusal costs nothing.
 */
const PIPELINED_MAX_BYTES = 64 * 1024 * 1024;

/**
 * A file too large to read whole, sent without a round trip of its own. Its `RESUME` question goes
 * out now, ahead of the uploads queued before it; the upload itself is queued once the answer is in,
 * and sends its data without waiting for `OK file recv`. Asked inside the upload instead, the
 * question could only be answered after every earlier file was committed, and each file would wait
 * two round trips and the commit before it. The files of a tree have different names, so the order
 * among them does not matter.
 */
const uploadPipelined = async (client: RxferClient, file: PlannedFile, resume: boolean): Promise<TransferResult> => {
  const resumable = resume && client.resumableFromBytes !== undefined && file.size >= client.resumableFromBytes;
  const kept = resumable ? await client.keptUpload(file.remote) : null;
  return client.upload(file.path, file.remote, { resume, kept, pipelined: true });
};

/** The server's files under `folder`, by name; a folder that does not exist yet has none. */
const listedByName = async (client: RxferClient, folder: string): Promise<Map<string, ListingEntry>> => {
  const entries = await client.list(folder).catch((err: unknown) => {
    if (err instanceof RxferError && err.code === 'NOT_FOUND') return [];
    throw err;
  });
  return new Map(entries.map((entry) => [entry.name, entry]));
};
