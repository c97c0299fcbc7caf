/**
 * At most `limit` tasks of a tree copy in flight, and (when given) at most about `maxBytes` of their
 * files: one task may always start, so a file larger than the budget still goes, alone.
 * `Promise.race` over the set in flight, once per file, attached a reaction to every pending task
 * each time (64 per file): in `put -r` of 2,000 small files that was the largest item of the
 * client's profile after the microtask queue itself (bench/findings.md, issue 20). Here a finished
 * task wakes the one waiter directly.
 */
export class FileWindow {
  private readonly inFlight = new Set<Promise<void>>();
  private bytes = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly limit: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** Resolves once fewer than `limit` tasks are in flight and a task of `bytes` fits the budget. */
  async free(bytes = 0): Promise<void> {
    while (this.inFlight.size >= this.limit || (this.inFlight.size > 0 && this.bytes + bytes > this.maxBytes)) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Tracks `task` (which must not reject: record failures inside it), counting `bytes` until it ends. */
  add(task: Promise<void>, bytes = 0): void {
    const done: Promise<void> = task.finally(() => {
      this.inFlight.delete(done);
      this.bytes -= bytes;
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    });
    this.inFlight.add(done);
    this.bytes += bytes;
  }

  /** Resolves when every task added so far has finished. */
  async drained(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}
