import { RxferError } from '../errors/rxfer-error';
import { HashAlgorithm, RunningHash, startHash } from '../integrity/hash-algorithm';
import { Command, carriesData } from '../protocol/command';
import { RemoteName } from '../protocol/remote-name';
import type { User } from '../auth/user';
import type { QuotaReservation } from '../auth/quota-ledger';
import type { Reply } from '../protocol/reply';
import { ReadHandle, StagedWrite } from '../storage/storage-adapter';
import type { WriteWindow } from '../io/write-window';

/**
 * One request's state, from its command line to its last reply. Events carry their Transfer, so a
 * stage working on an earlier request is never confused by a pipelined later one.
 */
export class Transfer {
  name: RemoteName | undefined;
  /** Who asked; set by the authenticate stage before anything touches storage. */
  user: User | undefined;
  /** Set when the request was refused: its owed data is read and dropped, never stored. */
  refusal: RxferError | undefined;
  /** Set when storing failed mid-data (disk full): reported once the owed data has been read. */
  failure: RxferError | undefined;
  /** Storage took no data for a stall window: its staging data is discarded without waiting. */
  storageHung = false;
  /** Bytes of the file the server has: counted from the resume offset for a resumed upload. */
  received = 0;
  /** The upload's digest so far, in `algorithm` (starting from the kept prefix's state when resumed). */
  hash: RunningHash | undefined;
  staged: StagedWrite | undefined;
  /** Backpressure on the staging file's writes (see WriteWindow); made with the first chunk. */
  writeWindow: WriteWindow | undefined;
  download: ReadHandle | undefined;
  /** The reply of a file operation (STAT, DELETE, RENAME, MKDIR) that succeeded. */
  opReply: Reply | undefined;
  /** A LIST answer, formatted, waiting to be sent. */
  listing: { readonly body: Buffer; readonly count: number; readonly more?: boolean } | undefined;
  /** The quota reservation of an upload, settled by its commit's outcome, or on release if it never got that far. */
  quota: QuotaReservation | undefined;
  /**
   * The commit has begun (data and trailer in): its outcome, not a release, settles the quota. A
   * connection cut while the commit runs does not stop it, so settling the reservation as aborted
   * then had the ledger forget a file that was stored (and a resumed upload's kept prefix with it).
   */
  committing = false;
  readonly startedAt = process.hrtime.bigint();
  /** Resolves when this request has its final outcome (committed, refused, or its download begun). */
  readonly settled: Promise<void>;
  settle!: () => void;

  /**
   * A BATCH: its files not yet read off the wire, and those read whose last reply is not yet written.
   * The batch is over (and gives back its share of the connection's budget) when both are 0.
   */
  filesToCome: number;
  filesOpen = 0;

  constructor(
    readonly id: number,
    readonly command: Command,
    /** The algorithm of every digest this request sends or checks: the session's when it was made. */
    readonly algorithm: HashAlgorithm,
    /** The BATCH this file came in: it holds the connection's budget for it. */
    readonly batch?: Transfer,
  ) {
    // A BATCH's file arrives whole and is hashed in one call (store-batch): no running hash for it.
    this.hash = carriesData(command) && batch === undefined ? startHash(algorithm) : undefined;
    this.filesToCome = command.verb === 'BATCH' ? command.count : 0;
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  /** The declared byte count of an upload (0 for other verbs). */
  get size(): number {
    return carriesData(this.command) ? this.command.size : 0;
  }

  get displayName(): string {
    return this.name ?? '(unnamed)';
  }

  elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.startedAt) / 1e6;
  }

  /** Frees what this request holds; idempotent. Used on refusal and when the connection dies. */
  private readonly cleanups: (() => void)[] = [];

  /** Runs `cleanup` when the transfer is released (a slot in a per-user limit, say); at once if it was. */
  onRelease(cleanup: () => void): void {
    if (this.released) cleanup();
    else this.cleanups.push(cleanup);
  }

  /** Set once the transfer was released: work that finishes later must give back what it got. */
  released = false;

  /** Returns the bytes of an interrupted upload kept for a resume (0 if none). */
  async release(): Promise<number> {
    this.released = true;
    this.settle();
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.writeWindow?.release();
    const staged = this.staged;
    this.staged = undefined;
    this.download?.stream.destroy();
    this.download = undefined;
    // Released with its staging file still open means interrupted mid-data: a resumable upload keeps
    // what arrived (with the prefix it resumed from), and that much of its quota stays in use.
    const { quota } = this;
    if (!staged) {
      if (!this.committing) quota?.aborted(0);
      return 0;
    }
    // (A commit takes the staging file off the transfer first: one still here is not committing.)
    const suspend = async () => {
      const kept = await staged.suspend().catch(() => 0);
      quota?.aborted(kept);
      return kept;
    };
    // Kept bytes appear to a measurement of the quota as the claim ends: one change with their count.
    return quota ? quota.change(suspend) : suspend();
  }
}
