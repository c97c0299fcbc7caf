import { randomBytes, randomInt } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { RxferClient, RxferError } from '../../src/client/index';
import { TestServer, eventually, stagingFiles, startTestServer, userFiles } from '../helpers/server';

/**
 * Issue 17, the network: a connection reset mid-frame, at a random byte offset, in either
 * direction, during uploads and downloads of each size class. Each run ends with an error (never a
 * success, never a hang), nothing half-written under a real name on either side, and the next run
 * of the same request completes byte-identical.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Forwards both ways until `limit` bytes went in `direction`, then resets both connections. */
class CuttingProxy {
  private constructor(
    private readonly server: Server,
    readonly sockets: Set<Socket>,
  ) {}

  static async start(target: number, direction: 'up' | 'down', limit: number): Promise<CuttingProxy> {
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = createConnection(target, '127.0.0.1');
      let moved = 0;
      const cut = () => {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      };
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
      }
      const forward = (from: Socket, to: Socket, counted: boolean) =>
        from.on('data', (chunk: Buffer) => {
          if (!counted) return void to.write(chunk);
          const room = limit - moved;
          moved += chunk.length;
          if (room >= chunk.length) return void to.write(chunk);
          to.write(chunk.subarray(0, Math.max(0, room)), cut);
        });
      forward(client, upstream, direction === 'up');
      forward(upstream, client, direction === 'down');
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new CuttingProxy(server, sockets);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const SIZES = [
  ['small (the group-commit worker)', 20 * KiB],
  ['medium (a staging file)', 400 * KiB],
  ['large (kept for a resume)', 3 * MiB],
] as const;
const ROUNDS = 5;

describe('connections reset at random offsets', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(() => server.close());

  /** The request fails, whatever the offset; true if it did (a cut after the last reply may succeed). */
  const throughCut = async (direction: 'up' | 'down', limit: number, run: (client: RxferClient) => Promise<unknown>): Promise<boolean> => {
    const proxy = await CuttingProxy.start(server.port, direction, limit);
    try {
      const client = await RxferClient.connect({ host: '127.0.0.1', port: proxy.port }).catch((err: unknown) => err as RxferError);
      if (client instanceof Error) return true;
      try {
        await run(client);
        return false;
      } catch (err) {
        expect(err).toBeInstanceOf(RxferError);
        return true;
      } finally {
        client.close();
      }
    } finally {
      await proxy.close();
    }
  };

  test.each(SIZES)('uploads, %s: a cut never stores a wrong file, the next run stores it exactly', async (_label, size) => {
    const previous = randomBytes(1000);
    await writeFile(join(server.root, 'up.bin'), previous);
    let cut = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const data = randomBytes(size);
      const source = join(server.scratch, 'up.bin');
      await writeFile(source, data);
      // Somewhere in the request: the greeting exchange, the header, the data or the trailer.
      const limit = randomInt(1, size + 120);
      const failed = await throughCut('up', limit, (client) => client.upload(source, 'up.bin'));
      if (failed) cut++;
      const stored = await readFile(join(server.root, 'up.bin'));
      if (failed) expect(stored.equals(previous) || stored.equals(data)).toBe(true);
      else expect(stored.equals(data)).toBe(true);
      expect(await userFiles(server.root)).toEqual(['up.bin']);

      const again = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
      try {
        await again.upload(source, 'up.bin');
      } finally {
        again.close();
      }
      expect((await readFile(join(server.root, 'up.bin'))).equals(data)).toBe(true);
      await eventually(async () => (await stagingFiles(server.root)).length === 0, 5000, 'no staging data after the run that succeeded');
      await writeFile(join(server.root, 'up.bin'), previous);
    }
    // The cuts land inside the request: the test saw failures, not only late cuts.
    expect(cut).toBeGreaterThan(0);
  }, 120_000);

  test.each(SIZES)('downloads, %s: a cut never leaves a wrong file, the next run gets it exactly', async (_label, size) => {
    let cut = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const data = randomBytes(size);
      await writeFile(join(server.root, 'down.bin'), data);
      const previous = randomBytes(500);
      const target = join(server.scratch, 'down.bin');
      await writeFile(target, previous);
      const limit = randomInt(1, size + 200);
      const failed = await throughCut('down', limit, (client) => client.download('down.bin', target));
      if (failed) cut++;
      const local = await readFile(target);
      if (failed) expect(local.equals(previous) || local.equals(data)).toBe(true);
      else expect(local.equals(data)).toBe(true);

      const again = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
      try {
        await again.download('down.bin', target);
      } finally {
        again.close();
      }
      expect((await readFile(target)).equals(data)).toBe(true);
      // Only the target: no staging file, no resume file once it succeeded.
      expect((await readdir(server.scratch)).filter((name) => name !== 'up.bin')).toEqual(['down.bin']);
    }
    expect(cut).toBeGreaterThan(0);
  }, 120_000);
});
