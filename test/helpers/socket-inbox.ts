import type { Duplex } from 'node:stream';

/**
 * Everything a test peer receives on a socket, kept in one buffer so that nothing is lost between
 * reads, and read back as lines or exact byte counts. Every wait has a failure guard (never a timing
 * assertion) and fails early, with what was left unread, once no more bytes can come.
 */
export class SocketInbox {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private failure: Error | undefined;
  private readonly waiters = new Set<() => void>();
  /** Total bytes received. */
  received = 0;
  /** Resolves when the socket is fully closed (by either side). */
  readonly closed: Promise<void>;

  constructor(socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    socket.on('end', () => this.end());
    socket.on('error', (err) => {
      this.failure = err;
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.end();
        resolve();
      }),
    );
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** True once the peer's side ended (FIN), the socket closed, or it failed. */
  get isEnded(): boolean {
    return this.ended || this.failure !== undefined;
  }

  /** Bytes received and not read yet. */
  get unread(): Buffer {
    return this.buffered;
  }

  /** Resolves with `take()`'s value once it is not undefined; rejects on timeout or when no more bytes can come. */
  private waitFor<T>(take: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const unread = () => JSON.stringify(this.buffered.toString('latin1').slice(0, 200));
      const check = () => {
        const value = take();
        if (value !== undefined) return finish(() => resolve(value));
        if (this.isEnded) {
          finish(() => reject(new Error(`connection ended (${this.failure?.message ?? 'EOF'}) while waiting for ${what}; unread ${unread()}`)));
        }
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unread ${unread()}`))), timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The next line, without its `\n`, decoded as UTF-8. */
  line(timeoutMs: number): Promise<string> {
    return this.waitFor(
      () => {
        const newline = this.buffered.indexOf(0x0a);
        if (newline === -1) return undefined;
        const text = this.buffered.subarray(0, newline).toString('utf8');
        this.buffered = this.buffered.subarray(newline + 1);
        return text;
      },
      'a line',
      timeoutMs,
    );
  }

  /** Exactly `count` bytes. */
  bytes(count: number, timeoutMs: number): Promise<Buffer> {
    return this.waitFor(
      () => {
        if (this.buffered.length < count) return undefined;
        const out = Buffer.from(this.buffered.subarray(0, count));
        this.buffered = this.buffered.subarray(count);
        return out;
      },
      `${count} bytes`,
      timeoutMs,
    );
  }

  /** Waits until the peer ended the connection (FIN, reset or close); returns what was left unread. */
  async endOfInput(timeoutMs: number): Promise<Buffer> {
    await this.waitFor(() => (this.isEnded ? true : undefined), 'the peer to close the connection', timeoutMs).catch((err: Error) => {
      if (!this.isEnded) throw err;
    });
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }
}
