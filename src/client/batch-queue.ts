import { RxferError, toRxferError } from '../errors/rxfer-error';
import { parseByteCount } from '../protocol/protocol-limits';
import type { TransferResult } from './client-options';
import type { BatchFile, BatchOutcome } from './upload-batch.request';

/** How much one BATCH may carry, as the server's greeting says (`batch-files`, `batch-bytes`). */
export interface BatchLimits {
  readonly files: number;
  /** The files' bytes together (names and entry lines not counted). */
  readonly bytes: number;
}

const positiveCount = (text: string | undefined): number | undefined => {
  const value = parseByteCount(text ?? '');
  return value !== undefined && value > 0 ? value : undefined;
};

/**
 * The BATCH limits a greeting offers, or undefined: a server without both keys (one older than
 * BATCH) would answer BATCH with BAD_COMMAND and close, so each file then goes as its own UPLOAD.
 */
export const batchLimitsOf = (capabilities: Readonly<Record<string, string>>): BatchLimits | undefined => {
  const files = positiveCount(capabilities['batch-files']);
  const bytes = positiveCount(capabilities['batch-bytes']);
  return files !== undefined && bytes !== undefined ? { files, bytes } : undefined;
};

interface Queued {
  readonly file: BatchFile;
  readonly resolve: (result: TransferResult) => void;
  readonly reject: (error: RxferError) => void;
}

/**
 * Gathers files added one at a time into BATCH requests. The open batch is sent as soon as it is
 * full (`files`), before a file that would take it over `bytes`, and otherwise at the end of the
 * current turn of the event loop: everything a caller adds synchronously (or in one chain of
 * microtasks) shares a batch, and a caller that then awaits anything never waits on a batch that
 * nobody will send. The owner calls `flush()` before any other request takes its place on the
 * connection, so nothing asked later overtakes a file added earlier.
 */
export class BatchQueue {
  private open: Queued[] = [];
  private openBytes = 0;
  private endOfTurn: NodeJS.Immediate | undefined;

  constructor(
    readonly limits: BatchLimits,
    /** Sends one BATCH; one outcome per file, in order. */
    private readonly send: (files: readonly BatchFile[]) => Promise<BatchOutcome[]>,
  ) {}

  /** Whether a file of `bytes` can go in a batch at all (else: UPLOAD). */
  takes(bytes: number): boolean {
    return bytes <= this.limits.bytes;
  }

  /** Queues `file` (its name already checked: wireName); settles with its own outcome alone. */
  add(file: BatchFile): Promise<TransferResult> {
    if (!this.takes(file.data.length)) {
      return Promise.reject(new RxferError('INTERNAL', `a file of ${file.data.length} bytes cannot go in a batch of at most ${this.limits.bytes}`));
    }
    if (this.openBytes + file.data.length > this.limits.bytes) this.flush();
    const outcome = new Promise<TransferResult>((resolve, reject) => this.open.push({ file, resolve, reject }));
    this.openBytes += file.data.length;
    if (this.open.length >= this.limits.files) this.flush();
    else this.endOfTurn ??= setImmediate(() => this.flush());
    return outcome;
  }

  /** Sends the open batch now, if there is one. */
  flush(): void {
    if (this.endOfTurn !== undefined) clearImmediate(this.endOfTurn);
    this.endOfTurn = undefined;
    const batch = this.open;
    if (batch.length === 0) return;
    this.open = [];
    this.openBytes = 0;
    this.send(batch.map((queued) => queued.file)).then(
      (outcomes) =>
        batch.forEach((queued, i) => {
          const outcome = outcomes[i] ?? new RxferError('INTERNAL', `no outcome for file ${i + 1} of a batch of ${batch.length}`);
          if (outcome instanceof RxferError) queued.reject(outcome);
          else queued.resolve(outcome);
        }),
      (err: unknown) => batch.forEach((queued) => queued.reject(toRxferError(err))),
    );
  }
}
