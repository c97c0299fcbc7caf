import { createHash } from 'node:crypto';
import { Socket, connect } from 'node:net';

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Failure guard for every wait; generous because a loaded CI box is slow, never a timing assertion. */
const DEFAULT_TIMEOUT_MS = 5000;

/** The bytes of one UPLOAD/ADDFILE request: header, data and trailer (with the right digest unless given). */
export const uploadRequest = (name: string | Buffer, data: Buffer | string, options: { verb?: 'UPLOAD' | 'ADDFILE'; sha256?: string } = {}): Buffer => {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([
    Buffer.from(`${options.verb ?? 'UPLOAD'} ${body.length}\n`),
    Buffer.isBuffer(name) ? name : Buffer.from(name),
    Buffer.from('\n'),
    body,
    Buffer.from(`SHA256 ${options.sha256 ?? sha256(body)}\n`),
  ]);
};

export const downloadRequest = (name: string | Buffer): Buffer =>
  Buffer.concat([Buffer.from('DOWNLOAD\n'), Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.from('\n')]);

/**
 * A protocol-level client over a plain socket: it sends whatever it is told (malformed or not) and
 * reads the server's bytes back as lines or exact counts. Everything received is kept in one buffer,
 * so nothing is lost between reads.
 */
export class RawClient {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private closedFlag = false;
  private error: Error | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.closedFlag = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
  }

  /**
   * Connects to 127.0.0.1:`port`; unless told otherwise, reads the greeting line (`greeting`). Our
   * side ends when the server's does (no half-open), as `nc` does.
   */
  static async connect(port: number, options: { readGreeting?: boolean; allowHalfOpen?: boolean } = {}): Promise<RawClient & { greeting: string }> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
    const client = new RawClient(socket) as RawClient & { greeting: string };
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    client.greeting = options.readGreeting === false ? '' : await client.readLine();
    return client;
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves with `take()`'s value once it is not undefined; rejects on timeout or when no more bytes can come. */
  private waitFor<T>(take: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = take();
        if (value !== undefined) return finish(() => resolve(value));
        if (this.ended || this.error) {
          const tail = JSON.stringify(this.buffered.toString('latin1').slice(0, 200));
          return finish(() => reject(new Error(`connection ended (${this.error?.message ?? 'EOF'}) while waiting for ${what}; unread: ${tail}`)));
        }
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unread: ${JSON.stringify(this.buffered.toString('latin1').slice(0, 200))}`))),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The next line the server sent, without its `\n`. */
  readLine(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    return this.waitFor(
      () => {
        const newline = this.buffered.indexOf(0x0a);
        if (newline === -1) return undefined;
        const line = this.buffered.subarray(0, newline).toString('utf8');
        this.buffered = this.buffered.subarray(newline + 1);
        return line;
      },
      'a line',
      timeoutMs,
    );
  }

  /** The next `count` lines. */
  async readLines(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(await this.readLine(timeoutMs));
    return lines;
  }

  /**
   * The outcome of an upload whose whole request was sent: its refusal, or (after `OK file recv`)
   * its final reply. Where the server refuses (at the header or at commit) is its choice.
   */
  async readUploadOutcome(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const first = await this.readLine(timeoutMs);
    return first === 'OK file recv' ? this.readLine(timeoutMs) : first;
  }

  /** Exactly `count` bytes. */
  readBytes(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    return this.waitFor(
      () => {
        if (this.buffered.length < count) return undefined;
        const bytes = Buffer.from(this.buffered.subarray(0, count));
        this.buffered = this.buffered.subarray(count);
        return bytes;
      },
      `${count} bytes`,
      timeoutMs,
    );
  }

  send(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Half-close: no more bytes from us, but we keep reading (`nc -N`). */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Waits until the server has closed the connection (its FIN, or a reset) and returns whatever it
   * sent that was not read yet.
   */
  async waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    await this.waitFor(() => (this.ended || this.error ? true : undefined), 'the server to close the connection', timeoutMs);
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  /** True once the server's side has ended (FIN) or the socket is gone. */
  get serverClosed(): boolean {
    return this.ended || this.closedFlag || this.error !== undefined;
  }

  /** Bytes received and not read yet. */
  get unread(): Buffer {
    return this.buffered;
  }
}

/** Destroys every client in the list, for afterEach. */
export const destroyAll = (clients: RawClient[]): void => {
  for (const client of clients.splice(0)) client.destroy();
};
