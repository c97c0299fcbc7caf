import { closeSync, lstatSync } from 'node:fs';
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
import { inBatches } from './in-batches';
import { ListingCursor } from './listing-cursor';
import { type WalkedFile, walkFiles } from './local-tree-walk';
import { type FileVersion, localIoError, sameVersion } from './local-io';
import { type CachedRecord, type DigestCache, type FileState, stateOf } from './digest-cache';

/** Files in flight at once (read into memory or streaming, sent, awaiting replies): bounds memory and open files. */
const WINDOW_FILES = 64;

/**
 * With BATCH, small files go in flight by the batch, so the window is counted in batches: with 64
 * files a window and 64 a batch, one batch at a time would be in flight, and every batch would wait
 * a round trip and the server's commit before the next was sent. The server reads up to 4 batches
 * ahead on a connection (its request budget), so 4: while it commits one, the next three wait in
 * its input, and the batch that follows goes out as soon as the first one's replies are in. More
 * would only wait in the socket buffers, holding the client's memory. Their bytes are still bounded
 * by WINDOW_BYTES (4 batches of 1 MiB fit).
 */
const BATCHES_IN_FLIGHT = 4;

/**
 * …and at most this many bytes of files read whole ahead of their turn: 64 files of 1 MiB held
 * 64 MiB, and every fresh buffer's pages faulted in (see whole-file-buffers.ts; 200 × 1 MiB: 21,200
 * page faults and 1.05 s of client CPU → 6,600 and 0.65 s). Streamed files hold no such buffer.
 */
const WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * A file the walk saw small enough to read whole: read ahead of its turn to send (up to the window's
 * files at once), synchronously up to SYNC_READ_MAX_BYTES (in `put -r` of many small files the four
 * thread-pool round trips of an async readFile were most of the client's time: 2,000 × 4 KiB to
 * tmpfs, 3,086–3,373 → 4,474 files/s), as `upload()` reads one: whole, and again if it was written
 * to meanwhile. Then sent in a BATCH, or as one UPLOAD when larger. One that grew past
 * WHOLE_FILE_MAX_BYTES since the walk's lstat is streamed from its path instead: read whole, it
 * took a buffer the size of whatever it had become (hostile pass x).
 */
const sendWhole = async (client: RxferClient, file: PlannedFile, resume: boolean, readAs: (version: FileVersion) => void): Promise<TransferResult> => {
  const source = openSource(file.path);
  if (source.size > WHOLE_FILE_MAX_BYTES) {
    closeSync(source.fd);
    return client.upload(file.path, file.remote, { resume });
  }
  const data = await readWhole(source, file.path, readAs);
  return data.length <= BATCHED_MAX_BYTES ? client.uploadBatched(file.remote, data) : client.uploadBuffer(file.remote, data);
};

interface LocalFile {
  readonly path: string;
  readonly name: string;
  readonly size: number;
  /** As lstat saw it before anything was read: what a digest is recorded against (digest-cache.ts). */
  readonly state: FileState;
}

/** A local file and the name it gets on the server. */
interface PlannedFile extends LocalFile {
  readonly remote: string;
}

/**
 * Files up to this size go in BATCHes; larger ones read whole go as pipelined UPLOADs. A batch saves
 * the server its per-request work, which is most of a 4 KiB file's cost but little of a 1 MiB one's,
 * and the server holds a batch's files whole in memory until they are committed, where an UPLOAD's
 * data streams through (200 × 1 MiB as batches of one: the same time on a fresh server, 0.72 → 0.94 s
 * on the benchmark's, whose heap the 1 MiB buffers churned).
 */
const BATCHED_MAX_BYTES = 64 * 1024;

/** Files whose already-there check runs together (a few at a time, as identicalFiles does), in walk order. */
const CHECK_GROUP_FILES = 256;

/**
 * The windows files wait in before they are sent: files read whole, and streamed ones. Without
 * BATCH, one window for both, as ever. With it, small files get a window of BATCHES_IN_FLIGHT batches
 * of their own, while streamed files stay at WINDOW_FILES: each holds an open file until its reply
 * (256 would pass macOS's default limit of 256 open files).
 */
const treeWindows = (client: RxferClient): { readonly whole: FileWindow; readonly streamed: FileWindow } => {
  const batch = client.batchLimits;
  if (batch === undefined) {
    const window = new FileWindow(WINDOW_FILES, WINDOW_BYTES);
    return { whole: window, streamed: window };
  }
  return { whole: new FileWindow(BATCHES_IN_FLIGHT * batch.files, WINDOW_BYTES), streamed: new FileWindow(WINDOW_FILES) };
};

/** The name `file` gets on the server: NFC, as sent (the server's listing holds NFC names). */
const remoteNameOf = (folder: string, file: WalkedFile): string => {
  const remote = folder === '' ? file.name : `${folder}/${file.name}`;
  try {
    return wireName(remote);
  } catch (err) {
    throw new RxferError('NAME_INVALID', `${printableName(file.path)} cannot be sent: ${(err as Error).message}`);
  }
};

/** The error of a copy abandoned through TreeOptions.signal, with what it stored before. */
const abandoned = (stored: number, bytes: number): RxferError =>
  new RxferError('CONNECTION_LOST', `put -r abandoned: ${stored} files stored before it, each whole; the rest not sent`, { stored, bytes });

/**
 * What a failed walk ends with: an RxferError as it is (a name refused); else a folder that could not
 * be read, named by the path its error gives (a folder deep in the tree, not the top one: hostile pass s).
 */
const walkFailure = (localDir: string, err: unknown): RxferError => {
  const failed = (err as NodeJS.ErrnoException | undefined)?.path;
  return localIoError(err, 'read', typeof failed === 'string' ? printableName(failed) : localDir);
};

/**
 * `put -r`: uploads every file below `localDir` as `remoteFolder/<relative path>`. All names are
 * checked before any file is sent; small files go many to a request (BATCH, where the server offers
 * it; else pipelined, with no round trip per file), each still verified and committed atomically by
 * the server; large ones are streamed.
 * A file that fails (changed while it was read, refused by the server) does not stop the others; the
 * error that ends it names the ones that failed, once all the others are done.
 *
 * Memory is O(folder + page + window), not O(tree) (issue 17: ≈ 1.2 KiB a file, 298 MiB for a
 * re-run of 200,000): the tree is walked twice, one folder at a time in the server's order of
 * names, first to check every name, then to send; the server's listing (size and digest: an
 * identical file is not sent) is read page by page alongside the second walk (ListingCursor). A
 * file added between the walks is sent if its name passes; one removed fails alone (LOCAL_IO).
 */
export const uploadTree = async (
  client: RxferClient,
  localDir: string,
  remoteFolder: string,
  options: TreeOptions & {
    onFile?: (name: string, result: TransferResult) => void;
    /** The digests of `localDir`'s unchanged files from an earlier run: such a file is compared without being read. */
    digestCache?: DigestCache;
  } = {},
): Promise<TreeResult> => {
  const folder = remoteFolder.replace(/\/+$/, '');
  // The server's listing is asked for first, so that it is built while the tree is walked (a LIST
  // stores nothing: a walk that fails below has still sent nothing that changes the server).
  const remote = options.skipIdentical === false ? undefined : new ListingCursor(client.listPages(folder)).start();
  // First walk: names only. One the server would refuse, and no file is sent.
  try {
    for await (const file of walkFiles(localDir)) {
      if (options.signal?.aborted) throw abandoned(0, 0);
      remoteNameOf(folder, file);
    }
  } catch (err) {
    throw walkFailure(localDir, err);
  }
  let bytes = 0;
  let wanted = 0;
  let skipped = 0;
  let unsent = 0;
  const failures: FileFailure[] = [];
  const windows = treeWindows(client);
  const cache = options.digestCache;
  try {
    for await (const batch of inBatches(walkFiles(localDir), CHECK_GROUP_FILES)) {
      // Abandoned: what was not reached is neither counted nor walked.
      if (options.signal?.aborted) break;
      // Lost: every request after this fails alike. The ones in flight report it; the rest are not sent.
      if (client.isClosed) {
        wanted += batch.length;
        unsent += batch.length;
        continue;
      }
      // Before any lstat: a digest is recorded only for a state already older than this by the racy margin.
      const seenAtNs = BigInt(Date.now()) * 1_000_000n;
      const planned: (PlannedFile | RxferError)[] = batch.map((file) => {
        try {
          const state = stateOf(lstatSync(file.path, { bigint: true }));
          // Field by field, not a spread of `file`: a spread is a runtime call at the CLI's baseline tier.
          return { path: file.path, name: file.name, remote: remoteNameOf(folder, file), size: Number(state.size), state };
        } catch (err) {
          return localIoError(err, 'read', printableName(file.path));
        }
      });
      // Asked in walk order, so the cursor reads each page of the server's listing once, and the cache each record.
      const entries: (ListingEntry | undefined)[] = [];
      const known: (CachedRecord | undefined)[] = [];
      for (const file of planned) {
        entries.push(file instanceof RxferError ? undefined : await remote?.find(file.remote));
        known.push(file instanceof RxferError ? undefined : cache?.find(file.name, file.state));
      }
      // A file whose digest the cache knows is not read.
      const identical = await identicalFiles(
        planned.map((file, i) => (file instanceof RxferError || known[i] !== undefined ? { localPath: '' } : { localPath: file.path, remote: entries[i] })),
        client.hash,
      );
      for (const [i, file] of planned.entries()) {
        const place = cache?.place() ?? -1;
        const entry = entries[i];
        const record = known[i];
        if (!(file instanceof RxferError) && (record === undefined ? identical[i] : entry?.size === file.size && entry.digest === record.digest)) {
          skipped++;
          if (record !== undefined) cache?.carry(place, record);
          // Read whole and found to be the server's copy: the server's digest is its own.
          else cache?.record(place, file.name, file.path, file.state, seenAtNs, entry!.digest!);
          continue;
        }
        const index = wanted++;
        if (file instanceof RxferError) {
          failures.push({ index, name: batch[i]!.path, error: file });
          cache?.skip(place);
          continue;
        }
        const whole = file.size <= WHOLE_FILE_MAX_BYTES;
        const held = whole ? file.size : 0;
        const window = whole ? windows.whole : windows.streamed;
        await window.free(held);
        if (client.isClosed) {
          unsent++;
          cache?.skip(place);
          continue;
        }
        // The version a small file's bytes were read in, checked on the descriptor they were read from.
        let readAs: FileVersion | undefined;
        const sending =
          whole
            ? sendWhole(client, file, options.resume !== false, (version) => (readAs = version))
            : file.size <= PIPELINED_MAX_BYTES
              ? uploadPipelined(client, file, options.resume !== false)
              : client.upload(file.path, file.remote, { resume: options.resume });
        // A file that fails (changed while read, refused by the server) is reported at the end; the
        // others go on, as with rsync or cp -r.
        window.add(
          sending.then(
            (result) => {
              bytes += result.size;
              // A small file read in the state seen before needs no second look; a streamed one gets its lstat.
              if (readAs === undefined) cache?.record(place, file.name, file.path, file.state, seenAtNs, result.digest);
              else if (sameVersion(readAs, file.state)) cache?.recordRead(place, file.name, file.state, seenAtNs, result.digest);
              else cache?.skip(place);
              options.onFile?.(file.remote, result);
            },
            (err: unknown) => {
              cache?.skip(place);
              failures.push({ index, name: file.path, error: toRxferError(err) });
            },
          ),
          held,
        );
      }
    }
  } catch (err) {
    // A listing page lost with the connection: the files left are not sent, as above.
    if (!client.isClosed || failures.length === 0) throw walkFailure(localDir, err);
  } finally {
    await windows.whole.drained();
    await windows.streamed.drained();
    cache?.commit();
  }
  if (options.signal?.aborted) throw abandoned(wanted - failures.length - unsent, bytes);
  if (failures.length > 0) throw treeFailure('stored', wanted, failures, unsent);
  // Lost while no request was in flight (between two files): none failed, yet some were never sent.
  if (unsent > 0) {
    throw new RxferError('CONNECTION_LOST', `${unsent} of ${wanted} files were not stored: ${unsent} not sent once the connection was lost`, { failed: unsent, files: wanted });
  }
  return { files: wanted, bytes, skipped };
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
