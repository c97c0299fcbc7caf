import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';

export type Direction = 'up' | 'down';

/**
 * A TCP proxy on 127.0.0.1 that counts the bytes each way (`up`: client to server), so a test can
 * tell how much a transfer really sent. With `holdAfter`, it forwards only that many bytes in one
 * direction and drops the rest (the receiver sees a stalled stream): the moment to kill a client
 * mid-transfer, at a byte offset the test chose.
 */
export class CountingProxy {
  readonly bytes: Record<Direction, number> = { up: 0, down: 0 };
  private readonly sockets = new Set<Socket>();
  private holdAfter: { direction: Direction; limit: number } | undefined;
  /** Connections opened before the last reset are still forwarded, but no longer counted. */
  private generation = 0;
  private onHold: (() => void) | undefined;

  private constructor(
    private readonly server: Server,
    private readonly target: number,
  ) {}

  static async start(targetPort: number): Promise<CountingProxy> {
    const server = createServer();
    const proxy = new CountingProxy(server, targetPort);
    server.on('connection', (client) => proxy.pipe(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Counts from zero again (only connections opened from now on) and forwards everything. */
  reset(): void {
    this.generation++;
    this.bytes.up = 0;
    this.bytes.down = 0;
    this.holdAfter = undefined;
  }

  /** Forwards `limit` bytes in `direction` from now on, then drops; resolves when it starts dropping. */
  holdAfterBytes(direction: Direction, limit: number): Promise<void> {
    this.reset();
    this.holdAfter = { direction, limit };
    return new Promise((resolve) => (this.onHold = resolve));
  }

  private pipe(client: Socket): void {
    const upstream = createConnection(this.target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    }
    this.forward(client, upstream, 'up', this.generation);
    this.forward(upstream, client, 'down', this.generation);
    // One side gone: let the other read what is already on its way, then close.
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
  }

  private forward(from: Socket, to: Socket, direction: Direction, generation: number): void {
    from.on('data', (chunk: Buffer) => {
      if (generation !== this.generation) {
        to.write(chunk);
        return;
      }
      const hold = this.holdAfter?.direction === direction ? this.holdAfter : undefined;
      let out = chunk;
      if (hold) {
        const room = Math.max(0, hold.limit - this.bytes[direction]);
        if (room < chunk.length) {
          // Past the limit the bytes are dropped, not left unread: the proxy must still see the
          // sender die (a paused socket would not notice), as a real peer would.
          out = chunk.subarray(0, room);
          this.onHold?.();
          this.onHold = undefined;
        }
      }
      this.bytes[direction] += out.length;
      if (out.length > 0 && !to.write(out)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
