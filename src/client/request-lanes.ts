/** What a request gets from the lanes: when it may read, and how to let the next request write. */
export interface RequestTurn {
  /** Resolves once every earlier request has read all its replies. */
  readonly receiveTurn: Promise<void>;
  /** Lets the next request start writing; call it once this request has written everything it owes. */
  doneSending(): void;
  /**
   * Lets the next request read its replies before this one has finished its local work (a download
   * fsyncing and renaming its file); call it once every reply of this request has been read.
   */
  doneReceiving(): void;
}

/**
 * Orders requests on one connection. Replies come in request order, so a request may read only after
 * the earlier ones have read theirs; but it may *write* as soon as the previous request finished
 * writing. That is the protocol's pipelining: many small uploads go out back to back while their
 * replies are read behind them, without a round trip per file. A request that must see a reply before
 * it can write on (a streamed upload waits for `OK file recv`) simply keeps its send lane until then.
 */
export class RequestLanes {
  private sendFree: Promise<void> = Promise.resolve();
  private receiveFree: Promise<void> = Promise.resolve();

  async run<T>(request: (turn: RequestTurn) => Promise<T>): Promise<T> {
    const mySend = this.sendFree;
    const myReceive = this.receiveFree;
    let releaseSend!: () => void;
    let releaseReceive!: () => void;
    // Taken synchronously, so requests keep the order in which they were called. The next request
    // may read once this one is done *and* every earlier one is: a request that fails before it
    // reads (a name refused locally, say) must not let the next one read an earlier one's replies.
    this.sendFree = new Promise((resolve) => (releaseSend = resolve));
    const finished = new Promise<void>((resolve) => (releaseReceive = resolve));
    this.receiveFree = Promise.all([myReceive, finished]).then(() => undefined);
    await mySend;
    try {
      return await request({ receiveTurn: myReceive, doneSending: releaseSend, doneReceiving: releaseReceive });
    } finally {
      releaseSend();
      releaseReceive();
    }
  }
}
