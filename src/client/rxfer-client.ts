import { RxferError } from '../errors/rxfer-error';
import { DEFAULT_HASH, HashAlgorithm, availableHashes, hashLabel } from '../integrity/hash-algorithm';
import { PROTOCOL_VERSION } from '../protocol/protocol-limits';
import type { ConnectOptions, DownloadOptions, KeptUpload, TransferResult, UploadOptions } from './client-options';
import { Connection } from './connection';
import { downloadBuffer } from './download-buffer.request';
import type { Writable } from 'node:stream';
import { type DownloadItem, downloadFile, downloadFiles, downloadToStream } from './download-file.request';
import { replyError } from './expect-reply';
import { openSocket } from './open-socket';
import { watchGreeting } from './greeting-watch';
import { type ListingPage, ListShape, listInPages, listPage, listingPages, shapeFileListing } from './list.request';
import { fileOp, type RemoteStatus } from './file-op.request';
import type { ListingEntry } from '../protocol/listing';
import { RequestLanes, type RequestTurn } from './request-lanes';
import { BatchQueue, type BatchLimits, batchLimitsOf } from './batch-queue';
import { uploadBatch } from './upload-batch.request';
import { uploadBuffer } from './upload-buffer.request';
import { wireName } from './request-header';
import { printableName } from '../protocol/remote-name';
import { askKept, uploadFile } from './upload-file.request';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** AUTH right after the greeting; a wrong token is AUTH_FAILED (and the server closes). */
const authenticate = async (conn: Connection, token: string): Promise<void> => {
  if (/\s/.test(token) || token === '') throw new RxferError('AUTH_FAILED', 'the token is empty or contains white space');
  await conn.send(`AUTH ${token}\n`);
  const reply = await conn.readReply();
  if (reply.kind !== 'authOk') throw replyError(conn, reply, 'AUTH');
};

/**
 * HASH right after the greeting (and AUTH), for an algorithm other than the default. Refused before
 * anything is sent if either end cannot compute it: the greeting's `hash` lists what the server offers.
 */
const chooseHash = async (conn: Connection, hash: HashAlgorithm, offered: string | undefined): Promise<void> => {
  const serverHas = (offered ?? DEFAULT_HASH).split(',');
  if (!serverHas.includes(hash)) {
    throw new RxferError('HASH_UNSUPPORTED', `the server offers ${serverHas.map(hashLabel).join(', ')}, not ${hashLabel(hash)}`);
  }
  if (!availableHashes().includes(hash)) throw new RxferError('HASH_UNSUPPORTED', `${hashLabel(hash)} is not available on this machine (no prebuilt module for it)`);
  await conn.send(`HASH ${hashLabel(hash)}\n`);
  const reply = await conn.readReply();
  if (reply.kind !== 'hashChosen' || reply.hash !== hash) throw replyError(conn, reply, `HASH ${hashLabel(hash)}`);
  conn.hash = hash;
};

/**
 * A connection to an rxfer server (protocol v1). Requests may be called without awaiting the previous
 * one: they run in call order, and in-memory uploads are pipelined (see RequestLanes). Every failure
 * is an RxferError: the server's code, or CONNECTION_LOST, PROTOCOL_VIOLATION, LOCAL_IO,
 * CHECKSUM_MISMATCH, NAME_INVALID (refused locally, before anything is sent).
 */
export class RxferClient {
  private readonly lanes = new RequestLanes();
  /** Files for the next BATCH; none on a server whose greeting offers no BATCH. */
  private readonly batches: BatchQueue | undefined;

  private constructor(
    private readonly conn: Connection,
    /** The greeting's `key=value` capabilities, e.g. `{ caps: 'upload,…', hash: 'sha256' }`. */
    readonly capabilities: Readonly<Record<string, string>>,
  ) {
    const limits = batchLimitsOf(capabilities);
    // Straight to the lanes: `run` would flush the queue that is sending.
    this.batches = limits && new BatchQueue(limits, (files) => this.lanes.run((turn) => uploadBatch(this.conn, turn, files)));
  }

  /**
   * Every request but a BATCH takes its lane through here. The open batch goes first: its files were
   * asked for earlier, and a later request must not overtake them (a DOWNLOAD of a file being
   * uploaded would read the old version, a DELETE would be undone).
   */
  private run<T>(request: (turn: RequestTurn) => Promise<T>): Promise<T> {
    this.batches?.flush();
    return this.lanes.run(request);
  }

  static async connect(options: ConnectOptions): Promise<RxferClient> {
    let conn!: Connection;
    const { socket, connected } = openSocket(options.host, options.port, (s) => (conn = new Connection(s)), options.tls);
    // Not an rxfer server (junk, TLS, silence that a TLS probe explains): said at once, not after the timeout.
    const watch = watchGreeting(socket, options.host, options.port, options.tls !== undefined || options.tlsProbe !== true);
    const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      const message = `no greeting from ${options.host}:${options.port} within ${timeoutMs} ms`;
      socket.destroy(new RxferError('CONNECTION_LOST', message, { host: options.host, port: options.port, reason: 'NO_GREETING' }));
    }, timeoutMs);
    try {
      await connected;
      const greeting = await conn.readReply();
      if (greeting.kind !== 'greeting') throw replyError(conn, greeting, 'the connection');
      if (greeting.version !== PROTOCOL_VERSION) {
        throw new RxferError('PROTOCOL_VIOLATION', `the server speaks ${greeting.version}, not ${PROTOCOL_VERSION}`);
      }
      if (options.token !== undefined) await authenticate(conn, options.token);
      if (options.hash !== undefined && options.hash !== DEFAULT_HASH) await chooseHash(conn, options.hash, greeting.caps['hash']);
      return new RxferClient(conn, greeting.caps);
    } catch (err) {
      socket.destroy();
      throw watch.verdict ?? err;
    } finally {
      clearTimeout(timer);
      watch.stop();
    }
  }

  /** The algorithm of this connection's digests (results, STAT and LIST are in it). */
  get hash(): HashAlgorithm {
    return this.conn.hash;
  }

  /**
   * UPLOAD (or ADDFILE with `mode: 'create'`) a local file, hashed on the way. Files up to 1 MiB that
   * the server would not keep for a resume are read whole and pipelined like `uploadBuffer` (many
   * calls without awaiting cost no round trip each); larger ones stream. An upload the server kept
   * from an interrupted attempt is continued after its prefix is proven equal (`resumedAt` in the
   * result), unless `resume: false`. RESUME_MISMATCH means the kept data changed between that proof
   * and the upload (rare): upload again, with `resume: false` to be sure.
   */
  upload(localPath: string, remoteName: string, options: UploadOptions = {}): Promise<TransferResult> {
    const { resumableFromBytes } = this;
    return this.run((turn) => uploadFile(this.conn, turn, localPath, remoteName, { ...options, resumableFromBytes }));
  }

  /** Uploads at least this large are kept by the server when interrupted (undefined: none are). */
  get resumableFromBytes(): number | undefined {
    const resumeMin = Number(this.capabilities['resume-min']);
    return Number.isSafeInteger(resumeMin) && resumeMin >= 0 ? resumeMin : undefined;
  }

  /**
   * RESUME: what the server kept of an interrupted upload of `remoteName` (null: nothing, or another
   * connection is writing it now). Pipelined like any request; pass the answer to `upload()` as
   * `kept` so that it does not ask again.
   */
  keptUpload(remoteName: string): Promise<KeptUpload | null> {
    return this.run((turn) => askKept(this.conn, turn, remoteName));
  }

  /** UPLOAD/ADDFILE from memory, pipelined: many small files go without a round trip each. */
  uploadBuffer(remoteName: string, data: Buffer, options: { mode?: UploadOptions['mode'] } = {}): Promise<TransferResult> {
    return this.run((turn) => uploadBuffer(this.conn, turn, remoteName, data, options.mode ?? 'replace'));
  }

  /**
   * UPLOAD from memory, many small files to a request (BATCH, issue 20): the file joins the batch
   * being gathered, which goes out once full, or at the end of this turn of the event loop, or before
   * any other request of this client. Each file still succeeds or fails on its own, verified and
   * stored atomically like an UPLOAD. A file too large for a batch, or a server that has no BATCH,
   * goes by `uploadBuffer`. Always replaces (BATCH has no ADDFILE form).
   */
  uploadBatched(remoteName: string, data: Buffer): Promise<TransferResult> {
    if (this.batches === undefined || !this.batches.takes(data.length)) return this.uploadBuffer(remoteName, data);
    try {
      // Refused here, this name fails alone: the batch it would have joined goes on without it.
      const name = wireName(remoteName);
      // A line over the server's max-line is LINE_TOO_LONG, which closes the connection: every
      // other file of the batch would fail with it.
      const maxLine = Number(this.capabilities['max-line']);
      if (Number.isSafeInteger(maxLine) && Buffer.byteLength(name) + 1 > maxLine) {
        throw new RxferError('NAME_INVALID', `${printableName(name)}: its line is longer than the server's max-line of ${maxLine} bytes`);
      }
      return this.batches.add({ name, data });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** What one BATCH may carry on this connection; undefined when the server has no BATCH. */
  get batchLimits(): BatchLimits | undefined {
    return this.batches?.limits;
  }

  /** DOWNLOAD to `localPath`, verified, atomically replacing it; a failure leaves it untouched. */
  download(remoteName: string, localPath: string, options: DownloadOptions = {}): Promise<TransferResult> {
    return this.run((turn) => downloadFile(this.conn, turn, remoteName, localPath, options));
  }

  /**
   * `download` for many files as one request of this client: their DOWNLOADs leave in one write and
   * their replies are read in turn, each file verified and committed as `download` does it, and each
   * settling on its own. For many small files (`get -r`), where the client's own work per request
   * costs more than the file (downloadFiles).
   */
  downloadFiles(items: readonly DownloadItem[], options: DownloadOptions = {}): Promise<PromiseSettledResult<TransferResult>[]> {
    return this.run((turn) => downloadFiles(this.conn, turn, items, options));
  }

  /**
   * DOWNLOAD into a stream (stdout, a pipe, a device): written as it arrives, verified at the end,
   * so a failed check cannot take back what was written (the CLI says so). No staging, no resume.
   */
  downloadTo(remoteName: string, sink: Writable, options: DownloadOptions = {}): Promise<TransferResult> {
    return this.run((turn) => downloadToStream(this.conn, turn, remoteName, sink, options));
  }

  /** DOWNLOAD into memory, verified. */
  downloadBuffer(remoteName: string): Promise<TransferResult & { data: Buffer }> {
    return this.run((turn) => downloadBuffer(this.conn, turn, remoteName));
  }

  /**
   * LIST the files under a remote folder ('' for all); with `shape.folders` its folders too (empty
   * ones included), with `shape.shallow` only the folder's own entries. Names are the server's:
   * check before use.
   */
  async list(remoteFolder = '', shape: ListShape = {}): Promise<ListingEntry[]> {
    const offered = (this.capabilities['list-options'] ?? '').split(',');
    const asked = (shape.folders === true || shape.shallow === true) && offered.includes('folders') && offered.includes('shallow');
    const wire = asked ? shape : {};
    // A server that lists in pages (greeting `list=paged`) has no folder too large to list (issue 17).
    const entries =
      this.capabilities.list === 'paged'
        ? await listInPages((after) => this.run((turn) => listPage(this.conn, turn, remoteFolder, { after }, wire)))
        : await this.run((turn) => listPage(this.conn, turn, remoteFolder, undefined, wire)).then((page) => page.entries);
    // An older server: the same shape from its file listing, as far as files can tell.
    return asked || !(shape.folders || shape.shallow) ? entries : shapeFileListing(remoteFolder, entries, shape);
  }

  /**
   * The listing `list()` gives, page by page as the server sends it (issue 17: `get -r`, `put -r`
   * and `ls` of any size hold one page at a time). A server without `list=paged` gives one page, the
   * whole listing; so does an older one asked for a shape it must be worked out for (from all its files).
   */
  async *listPages(remoteFolder = '', shape: ListShape = {}): AsyncGenerator<ListingPage> {
    const offered = (this.capabilities['list-options'] ?? '').split(',');
    const asked = (shape.folders === true || shape.shallow === true) && offered.includes('folders') && offered.includes('shallow');
    if (this.capabilities.list !== 'paged' || (!asked && (shape.folders === true || shape.shallow === true))) {
      yield { entries: await this.list(remoteFolder, shape), more: false };
      return;
    }
    const wire = asked ? shape : {};
    yield* listingPages((after) => this.run((turn) => listPage(this.conn, turn, remoteFolder, { after }, wire)));
  }

  /** STAT a file or folder; NOT_FOUND if there is none. */
  async stat(remoteName: string): Promise<RemoteStatus> {
    const reply = await this.run((turn) => fileOp(this.conn, turn, 'STAT', [remoteName]));
    if (reply.kind !== 'stat') throw new RxferError('PROTOCOL_VIOLATION', `unexpected ${reply.kind} reply to STAT`);
    const { type, size, mtimeMs, digest } = reply;
    return { type, size, mtimeMs, ...(digest && { digest }) };
  }

  /** DELETE a file or an empty folder. */
  async remove(remoteName: string): Promise<void> {
    await this.run((turn) => fileOp(this.conn, turn, 'DELETE', [remoteName]));
  }

  /** RENAME a file or folder; never replaces an existing name (EXISTS). */
  async rename(from: string, to: string): Promise<void> {
    await this.run((turn) => fileOp(this.conn, turn, 'RENAME', [from, to]));
  }

  /** MKDIR a folder (and its parents). */
  async mkdir(remoteName: string): Promise<void> {
    await this.run((turn) => fileOp(this.conn, turn, 'MKDIR', [remoteName]));
  }

  /** QUIT, wait for `OK bye`, then close our side and wait for the socket to close. */
  quit(): Promise<void> {
    return this.run(async (turn) => {
      await this.conn.send('QUIT\n').catch((err: unknown) => this.conn.explainLoss(err, turn.receiveTurn));
      turn.doneSending();
      await turn.receiveTurn;
      const reply = await this.conn.readReply();
      if (reply.kind !== 'bye') throw replyError(this.conn, reply, 'QUIT');
      await this.conn.end();
    });
  }

  /**
   * Ends the connection now. Requests in progress fail with CONNECTION_LOST and clean up after
   * themselves (a download removes its staging file); this is how a caller aborts a transfer.
   */
  close(): void {
    this.conn.abandon(new RxferError('CONNECTION_LOST', 'the connection was closed by the client'));
  }

  get isClosed(): boolean {
    return this.conn.isClosed;
  }
}
