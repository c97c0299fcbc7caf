import { createHash } from 'node:crypto';
import { Socket, connect as connectTcp } from 'node:net';
import { TLSSocket, connect as connectTls, type ConnectionOptions } from 'node:tls';
import { SocketInbox } from '../../helpers/socket-inbox';

/** Failure guard for every wait (never a timing assertion). */
export const GUARD_MS = 10_000;

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

const asBuffer = (value: Buffer | string): Buffer => (Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'));

/** The bytes of one UPLOAD/ADDFILE request: header, name, data and trailer. */
export const uploadBytes = (name: Buffer | string, data: Buffer | string, verb: 'UPLOAD' | 'ADDFILE' = 'UPLOAD'): Buffer => {
  const body = asBuffer(data);
  return Buffer.concat([Buffer.from(`${verb} ${body.length}\n`), asBuffer(name), Buffer.from('\n'), body, Buffer.from(`SHA256 ${sha256(body)}\n`)]);
};

export const downloadBytes = (name: Buffer | string): Buffer => Buffer.concat([Buffer.from('DOWNLOAD\n'), asBuffer(name), Buffer.from('\n')]);

export interface WireOptions {
  readonly host?: string;
  /** Read the greeting line first (default true); it is then in `greeting`. */
  readonly readGreeting?: boolean;
  /** Speak TLS with these options (ca, minVersion, …). */
  readonly tls?: ConnectionOptions;
  /** Bind the client side to this local address (e.g. 127.0.0.2, another loopback IP). */
  readonly localAddress?: string;
}

/**
 * A protocol-level peer over a plain or TLS socket: sends any bytes it is told to, and reads the
 * server's output back as lines or exact byte counts. Nothing received is ever dropped.
 */
export class Wire {
  greeting = '';
  private readonly inbox: SocketInbox;
  /** Resolves when the socket is fully closed (by either side). */
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket | TLSSocket) {
    this.inbox = new SocketInbox(socket);
    this.closed = this.inbox.closed;
  }

  /** Total bytes received from the server. */
  get received(): number {
    return this.inbox.received;
  }

  static async open(port: number, options: WireOptions = {}): Promise<Wire> {
    const host = options.host ?? '127.0.0.1';
    const socket = options.tls
      ? connectTls({ host, port, ...(options.localAddress && { localAddress: options.localAddress }), ...options.tls })
      : connectTcp({ host, port, allowHalfOpen: true, ...(options.localAddress && { localAddress: options.localAddress }) });
    const wire = new Wire(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to ${host}:${port} within ${GUARD_MS} ms`)), GUARD_MS);
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (options.readGreeting !== false) wire.greeting = await wire.line();
    return wire;
  }

  /** The next line (without `\n`), decoded as UTF-8. */
  line(timeoutMs = GUARD_MS): Promise<string> {
    return this.inbox.line(timeoutMs);
  }

  bytes(count: number, timeoutMs = GUARD_MS): Promise<Buffer> {
    return this.inbox.bytes(count, timeoutMs);
  }

  send(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Waits until the server ended the connection (FIN, reset or close); returns what was left unread. */
  serverClosed(timeoutMs = GUARD_MS): Promise<Buffer> {
    return this.inbox.endOfInput(timeoutMs);
  }

  get isEnded(): boolean {
    return this.inbox.isEnded;
  }

  get unread(): Buffer {
    return this.inbox.unread;
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- requests ------------------------------------------------------------------------------

  /** Sends a whole UPLOAD (header, data, trailer) and returns its replies: one (refused) or two. */
  async upload(name: Buffer | string, data: Buffer | string, verb: 'UPLOAD' | 'ADDFILE' = 'UPLOAD'): Promise<string[]> {
    await this.send(uploadBytes(name, data, verb));
    const first = await this.line();
    if (first !== 'OK file recv') return [first];
    return [first, await this.line()];
  }

  /** DOWNLOAD: the reply line, and the data if the server sent any. */
  async download(name: Buffer | string): Promise<{ reply: string; data?: Buffer }> {
    await this.send(downloadBytes(name));
    const reply = await this.line();
    const match = /^OK (\d+) ([0-9a-f]{64})$/.exec(reply);
    if (!match) return { reply };
    return { reply, data: await this.bytes(Number(match[1])) };
  }

  async auth(token: string): Promise<string> {
    await this.send(`AUTH ${token}\n`);
    return this.line();
  }
}

/** Destroys every wire in the list (for afterEach / finally). */
export const destroyAll = (wires: Wire[]): void => {
  for (const wire of wires.splice(0)) wire.destroy();
};

/** Polls `check` until true; a failure guard, not a timing assertion. */
export const eventually = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = GUARD_MS): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
