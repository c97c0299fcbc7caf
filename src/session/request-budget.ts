import type { Verb } from '../protocol/command';

/**
 * How far one connection may read ahead of the replies it has written (PROTOCOL.md, "Pipelining").
 * One socket read can carry thousands of pipelined requests (`DOWNLOAD\nf\n` is 11 bytes), and each
 * takes something while it waits for its turn on the wire: an open file, a file's bytes in memory, a
 * folder walk. Beyond this budget the connection's input is held until a reply has been written.
 */
export const REQUEST_BUDGET = {
  /** Requests read and not yet answered in full (a download's data sent, an upload committed). */
  requests: 64,
  /**
   * Of which downloads: each holds an open file, or a small file (≤ 64 KiB) read into memory. (16
   * cost pipelined 4 KiB downloads ≈ 15 % of their rate here: each open's latency shows; 32 do not.)
   */
  downloads: 32,
  /** Of which LISTs: each walks a folder and holds its whole answer until it is sent. */
  lists: 1,
  /**
   * Of which BATCHes: each holds its files (up to BATCH_LIMITS.bytes, 1 MiB) until they are committed.
   * Four keep a client's batches flowing while the server commits the ones before (4 MiB at most).
   */
  batches: 4,
} as const;

export type BudgetLimits = { readonly [K in keyof typeof REQUEST_BUDGET]: number };

const kindOf = (verb: Verb): 'downloads' | 'lists' | 'batches' | undefined =>
  verb === 'DOWNLOAD' ? 'downloads' : verb === 'LIST' ? 'lists' : verb === 'BATCH' ? 'batches' : undefined;

/**
 * The counts behind REQUEST_BUDGET for one connection. Requests are admitted one at a time, in
 * order (the admit-requests stage waits on `roomFor`), so at most one waits here at a time.
 */
export class RequestBudget {
  private readonly used = { requests: 0, downloads: 0, lists: 0, batches: 0 };
  private waiting: { readonly verb: Verb; readonly admit: () => void } | undefined;

  constructor(private readonly limits: BudgetLimits = REQUEST_BUDGET) {}

  /** Undefined when a request with `verb` may start now; else resolves once it may. */
  roomFor(verb: Verb): Promise<void> | undefined {
    if (this.fits(verb)) return undefined;
    return new Promise((admit) => (this.waiting = { verb, admit }));
  }

  take(verb: Verb): void {
    this.used.requests++;
    const kind = kindOf(verb);
    if (kind) this.used[kind]++;
  }

  give(verb: Verb): void {
    this.used.requests--;
    const kind = kindOf(verb);
    if (kind) this.used[kind]--;
    const waiting = this.waiting;
    if (waiting && this.fits(waiting.verb, 0.5)) {
      this.waiting = undefined;
      waiting.admit();
    }
  }

  /**
   * Whether a request fits within `share` of the limits. A waiting request is admitted only once
   * half the budget is free again: requests then come in batches (their storage calls overlap, their
   * replies leave together) instead of one per reply written, each a socket resume and pause.
   */
  private fits(verb: Verb, share = 1): boolean {
    const kind = kindOf(verb);
    const below = (used: number, limit: number) => (share === 1 ? used < limit : used <= Math.floor(limit * share));
    return below(this.used.requests, this.limits.requests) && (kind === undefined || below(this.used[kind], this.limits[kind]));
  }
}
