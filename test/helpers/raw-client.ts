import { createHash } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { SocketInbox } from './socket-inbox';

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

/** One file of a BATCH as the test wants it sent: a wrong `sha256` or `entry` line makes a bad one. */
export interface BatchFile {
  readonly name: string | Buffer;
  readonly data: Buffer | string;
  readonly sha256?: string;
  /** The whole entry line, without its `\n`, in place of `<size> SHA256 <digest>`. */
  readonly entry?: string;
}

/** The bytes of one BATCH request: `BATCH <count>`, then each file's entry line, name line and bytes. */
export const batchRequest = (files: readonly BatchFile[], count = files.length): Buffer =>
  Buffer.concat([
    Buffer.from(`BATCH ${count}\n`),
    ...files.flatMap(({ name, data, sha256: digest, entry }) => {
      const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
      return [Buffer.from(`${entry ?? `${body.length} SHA256 ${digest ?? sha256(body)}`}\n`), Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.from('\n'), body];
    }),
  ]);

export const downloadRequest = (name: string | Buffer): Buffer =>
  Buffer.concat([Buffer.from('DOWNLOAD\n'), Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.from('\n')]);

/**
 * A protocol-level client over a plain socket: it sends whatever it is told (malformed or not) and
 * reads the server's bytes back as lines or exact counts (see SocketInbox).
 */
export class RawClient {
  private readonly inbox: SocketInbox;

  private constructor(readonly socket: Socket) {
    this.inbox = new SocketInbox(socket);
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

  /** The next line the server sent, without its `\n`. */
  readLine(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    return this.inbox.line(timeoutMs);
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
    return this.inbox.bytes(count, timeoutMs);
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
  waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    return this.inbox.endOfInput(timeoutMs);
  }

  /** True once the server's side has ended (FIN) or the socket is gone. */
  get serverClosed(): boolean {
    return this.inbox.isEnded;
  }

  /** Bytes received and not read yet. */
  get unread(): Buffer {
    return this.inbox.unread;
  }
}

/** Destroys every client in the list, for afterEach. */
export const destroyAll = (clients: RawClient[]): void => {
  for (const client of clients.splice(0)) client.destroy();
};
