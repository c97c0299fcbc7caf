/**
 * At most `limit` tasks of a tree copy in flight. `Promise.race` over the set in flight, once per
 * file, attached a reaction to every pending task each time (64 per file): in `put -r` of 2,000 small
 * files that was the largest item of the client's profile after the microtask queue itself
 * (bench/findings.md, issue 20). Here a finished task wakes the one waiter directly.
 */
export class FileWindow {
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | undefined;

  constructor(private readonly limit: number) {}

  /** Resolves once fewer than `limit` tasks are in flight. */
  async free(): Promise<void> {
    while (this.inFlight.size >= this.limit) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** Tracks `task` (which must not reject: record failures inside it). */
  add(task: Promise<void>): void {
    const done: Promise<void> = task.finally(() => {
      this.inFlight.delete(done);
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    });
    this.inFlight.add(done);
  }

  /** Resolves when every task added so far has finished. */
  async drained(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}
