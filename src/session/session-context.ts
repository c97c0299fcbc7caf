import { Socket } from 'node:net';
import { Logger } from 'pino';
import type { User } from '../auth/user';
import { RxferConfig } from '../config/config.schema';
import { DEFAULT_HASH, HashAlgorithm } from '../integrity/hash-algorithm';
import { RxferError } from '../errors/rxfer-error';
import { Command } from '../protocol/command';
import { storageError } from '../storage/storage-errors';
import { inside } from '../storage/name-locks';
import { withinStorageDeadline } from './storage-deadline';
import { FlowControl } from './flow-control';
import { RequestBudget } from './request-budget';
import { NO_OBSERVER, RequestEnding, SessionObserver } from './session-observer';
import { Transfer } from './transfer';

let nextSessionId = 1;

/**
 * What one connection's stages share: its socket's flow control, its logger, its limits and the
 * requests it has open. Owned by the ConnectionActor and torn down in one place (`dispose`).
 */
export class SessionContext {
  readonly id = nextSessionId++;
  readonly flow: FlowControl;
  log: Logger;
  readonly remote: string;
  /** True while a download's data is on the wire: an error then must not write a reply line. */
  midBody = false;
  /** Commits started and not yet finished (bounded by the write-file stage). */
  commitsInFlight = 0;
  /** The algorithm of this connection's digests: SHA-256 until a HASH request chooses another. */
  hash: HashAlgorithm = DEFAULT_HASH;
  /** Who this session acts for: the anonymous user (if allowed) until an AUTH succeeds. */
  user: User | undefined;
  /** How far the connection may read ahead of its replies (see the admit-requests stage). */
  readonly budget = new RequestBudget();
  /** Aborted when the connection is over: work still running for it (a LIST's walk) stops. */
  private readonly ended = new AbortController();
  /**
   * Requests read and not yet answered in full: a request stays here, holding what it took (slot,
   * open file, buffer, quota reservation), until its last reply, data included, has been written,
   * or the connection ends. A reply waiting in line to be written is still this request's.
   */
  private readonly open = new Set<Transfer>();
  private nextTransferId = 1;
  /** The per-user transfer slot this session holds while it has transfers in progress. */
  private slot: { user: string; release: () => void; active: number } | undefined;
  /** Unsettled requests by storage name: a later request on the same name waits for them. */
  private readonly pendingByName = new Map<string, Promise<void>>();

  constructor(
    readonly socket: Socket,
    readonly config: RxferConfig,
    logger: Logger,
    /** Metrics and the audit log watch the session through this (bound in the container). */
    readonly observer: SessionObserver = NO_OBSERVER,
  ) {
    this.flow = new FlowControl(socket);
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.log = logger.child({ session: this.id, remote: this.remote });
  }

  beginTransfer(command: Command): Transfer {
    const transfer = new Transfer(this.nextTransferId++, command, this.hash);
    this.open.add(transfer);
    this.budget.take(command.verb);
    return transfer;
  }

  /**
   * One file of `batch`: a request of its own for ordering, replies, quotas, the audit log and
   * metrics (an UPLOAD of `size` bytes), while the batch holds the connection's budget for it.
   */
  beginBatchFile(batch: Transfer, size: number): Transfer {
    const file = new Transfer(this.nextTransferId++, { verb: 'UPLOAD', size }, batch.algorithm, batch);
    this.open.add(file);
    batch.filesToCome--;
    batch.filesOpen++;
    return file;
  }

  /** Aborted once the connection is over (the peer left, QUIT, an error, the server stopped). */
  get signal(): AbortSignal {
    return this.ended.signal;
  }

  /**
   * Orders requests on one connection where order matters: a request waits for every earlier one
   * on the same name, on a folder above it or on a name below it (a pipelined DOWNLOAD sees the
   * UPLOAD sent before it; "a" is committed before "a/b" is refused for it). A LIST claims its
   * folder ('' for all), so it lists exactly what the requests before it left. Unrelated names do
   * not wait for each other: many small files overlap their storage calls. Must be called in
   * request order (the resolve stage is sequential).
   */
  earlierRequestsOn(storageName: string, transfer: Transfer): Promise<unknown> {
    const waits: Promise<void>[] = [];
    const settled = transfer.settled;
    const wait = (pending: Promise<void> | undefined) => {
      // A request naming one path twice (RENAME a a) must not wait for itself.
      if (pending && pending !== settled) waits.push(pending);
    };
    // The name and every folder above it, up to the root ('', claimed by a LIST of everything).
    wait(this.pendingByName.get(''));
    for (let slash = storageName.indexOf('/'); slash !== -1; slash = storageName.indexOf('/', slash + 1)) wait(this.pendingByName.get(storageName.slice(0, slash)));
    if (storageName !== '') wait(this.pendingByName.get(storageName));
    // And every earlier request below it: a DELETE or RENAME of a folder must see the files being
    // put into it, a LIST the files it lists. (The map holds only requests in flight: a short scan,
    // but a BATCH keeps a few hundred in flight, and `for…of` over entries made an array for each.)
    this.pendingByName.forEach((pending, name) => {
      if (storageName === '' ? name !== '' : inside(name, storageName)) wait(pending);
    });
    this.pendingByName.set(storageName, settled);
    void settled.then(() => {
      if (this.pendingByName.get(storageName) === settled) this.pendingByName.delete(storageName);
    });
    return Promise.all(waits);
  }

  /**
   * A session counts as one transfer against the user's limit while any of its requests is in
   * progress: requests pipelined on one connection move one at a time on the wire and are bounded
   * by the pipeline itself, so counting each would refuse a burst of small files for no gain.
   * `take` throws BUSY when the user is at the limit. Returns this request's release (call once).
   */
  holdTransferSlot(user: string, take: () => () => void): () => void {
    if (this.slot?.user !== user) {
      if (this.slot) this.slot.release();
      this.slot = { user, release: take(), active: 0 };
    }
    const slot = this.slot;
    slot.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--slot.active === 0) {
        slot.release();
        if (this.slot === slot) this.slot = undefined;
      }
    };
  }

  /**
   * A request's storage call, failing only with storage codes: a raw errno error (or one an adapter
   * wrapped as INTERNAL) must fail just this request (STORAGE_FAILED, …). As INTERNAL it would close
   * the session while the requests pipelined behind it have already started, to take effect unanswered.
   * A call that gives no answer for a stall window fails too (see withinStorageDeadline); what it
   * brings later goes to `discardLate`.
   */
  async storageCall<T>(action: string, name: string, call: () => Promise<T>, discardLate?: (late: T) => unknown): Promise<T> {
    try {
      const pending = new Promise<T>((resolve) => resolve(call()));
      return await withinStorageDeadline(pending, this.config.limits.stallTimeoutMs, `${action} ${name}`, discardLate);
    } catch (err) {
      if (err instanceof RxferError && err.code !== 'INTERNAL') throw err;
      this.log.warn({ err }, `Storage failed to ${action} ${name} without a storage code; reported as a storage failure`);
      // The errno under an INTERNAL wrapper, never its message: that names the server's own paths.
      throw storageError(err instanceof RxferError ? (err.cause ?? {}) : err, action, name);
    }
  }

  /** The request's last reply (and a download's data) is written, or could not be: free it. Idempotent. */
  endTransfer(transfer: Transfer, ending: RequestEnding = { complete: true }): void {
    if (!this.open.delete(transfer)) return;
    this.observer.requestEnded(this, transfer, ending);
    void transfer.release();
    const { batch } = transfer;
    if (batch === undefined) this.budget.give(transfer.command.verb);
    // The batch's last file answered: the batch gives back its budget (and its slot, if it held one).
    // (Ended with its last reply: the batch's audit line and metric carry that line's outcome; each
    // file has its own line and metric as an UPLOAD.)
    else if (--batch.filesOpen === 0 && batch.filesToCome === 0) this.endTransfer(batch, ending);
  }

  /**
   * A debug line per finished transfer, with its rate. Not info: the audit line (AuditLogObserver)
   * says the same (file, bytes, time, rate, digest) and is the one info line per request; with both,
   * each small file wrote three (bench/findings.md, issue 20).
   */
  logDone(transfer: Transfer, verb: 'Stored' | 'Sent', size = transfer.size, digest?: string): void {
    if (!this.log.isLevelEnabled('debug')) return;
    const ms = transfer.elapsedMs();
    const mibPerS = ms > 0 ? size / 1048576 / (ms / 1000) : 0;
    this.log.debug(
      { file: transfer.displayName, bytes: size, ms: Math.round(ms), ...(digest && { hash: transfer.algorithm, digest }) },
      `${verb} ${transfer.displayName} (${size} bytes) in ${ms.toFixed(0)} ms, ${mibPerS.toFixed(1)} MiB/s`,
    );
  }

  /**
   * Connection over: whatever is still open was interrupted. Nothing half-written survives under
   * any name: staging files are deleted, except a large upload's, which is kept for a resume.
   */
  async dispose(): Promise<void> {
    this.ended.abort();
    const interrupted = [...this.open];
    this.open.clear();
    await Promise.all(
      interrupted.map(async (transfer) => {
        this.observer.requestEnded(this, transfer, { complete: false });
        const uploading = transfer.staged !== undefined;
        const kept = await transfer.release().catch(() => 0);
        if (!uploading) return;
        const resumable = kept > 0 ? `; ${kept} bytes kept for a resume` : '';
        this.log.warn(
          { file: transfer.displayName, received: transfer.received, declared: transfer.size, kept },
          `Upload of ${transfer.displayName} interrupted after ${transfer.received} of ${transfer.size} bytes; nothing committed${resumable}`,
        );
      }),
    );
  }
}
