import { Duplex } from 'node:stream';

/**
 * Input backpressure for one connection. Any part of the pipeline that cannot keep up (a staging file
 * with its write window full, an awaited storage call, a reply the peer is not reading) takes a hold; the
 * socket reads nothing while any hold is taken. Holds are counted, so independent reasons compose.
 */
export class FlowControl {
  private holds = 0;
  private readonly draining = new Set<NodeJS.EventEmitter>();
  /** Counts holds ever taken: a watcher can tell whether any hold happened since it last looked. */
  holdsTaken = 0;

  constructor(private readonly socket: Duplex) {}

  /** Pauses input until the returned function is called (once; further calls are ignored). */
  hold(): () => void {
    this.holdsTaken++;
    if (this.holds++ === 0) this.socket.pause();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0 && !this.socket.destroyed) this.socket.resume();
    };
  }

  /**
   * Holds until a Writable drains, or can no longer drain: a stream ended before its buffer emptied
   * emits 'finish' and never 'drain', and one with autoClose off never emits 'close'. Missing either
   * would leave the socket paused forever.
   */
  holdUntilDrained(writable: NodeJS.EventEmitter): void {
    // One hold per writable is enough: every write that finds it full waits for the same drain.
    if (this.draining.has(writable)) return;
    this.draining.add(writable);
    const release = this.hold();
    const events = ['drain', 'finish', 'error', 'close'];
    const done = () => {
      for (const event of events) writable.off(event, done);
      this.draining.delete(writable);
      release();
    };
    for (const event of events) writable.on(event, done);
  }

  get paused(): boolean {
    return this.holds > 0;
  }
}
