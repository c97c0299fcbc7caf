import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { RxferClient } from '../../src/client/index';
import { TOKENS } from '../../src/container/tokens';
import { WRITE_WINDOW_HIGH_BYTES, openWriteWindows } from '../../src/io/write-window';
import type { RemoteName } from '../../src/protocol/remote-name';
import { MemoryStorage } from '../../src/storage/memory.storage';
import type { StagedWrite, WriteOptions } from '../../src/storage/storage-adapter';
import { RawClient, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, startTestServer } from '../helpers/server';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Storage on a slow disk: every chunk takes a millisecond to write (≈ 64 MiB/s for socket-sized
 * chunks, far below loopback), so the server has to hold the socket or buffer without bound. Records
 * how much ever waited to be written. (No slow disk can be had here; the adapter is the real memory
 * adapter behind a real, slow Writable.)
 */
class SlowDiskStorage extends MemoryStorage {
  mostWaiting = 0;

  override async beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    const staged = await super.beginWrite(name, options);
    const slow: Writable = new Writable({
      highWaterMark: 64 * KiB,
      write: (chunk: Buffer, _encoding, done) => {
        this.mostWaiting = Math.max(this.mostWaiting, slow.writableLength);
        staged.sink.write(chunk);
        setTimeout(done, 1);
      },
    });
    return {
      ...staged,
      sink: slow,
      commit: async (verified) => {
        await new Promise<void>((resolve) => slow.end(resolve));
        return staged.commit(verified);
      },
    };
  }
}

describe('an upload into storage slower than the network', () => {
  let server: TestServer;
  let storage: SlowDiskStorage;
  let client: RxferClient;

  beforeEach(async () => {
    storage = new SlowDiskStorage();
    server = await startTestServer({ customize: (container) => container.rebind(TOKENS.Storage).toConstantValue(storage) });
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  test('holds the socket once the write window is full: memory stays bounded and every byte arrives', async () => {
    const data = randomBytes(24 * MiB);
    await expect(client.uploadBuffer('slow.bin', data)).resolves.toEqual({ size: data.length, digest: sha256(data) });
    // Six times the window went through; never more than the window (and the socket read in hand) waited.
    expect(storage.mostWaiting).toBeGreaterThan(WRITE_WINDOW_HIGH_BYTES / 2);
    expect(storage.mostWaiting).toBeLessThanOrEqual(WRITE_WINDOW_HIGH_BYTES + 256 * KiB);
    expect((await client.downloadBuffer('slow.bin')).data.equals(data)).toBe(true);
  });
});

describe.each([
  ['local storage', {}],
  // The memory adapter's aborted writes never end their sink: the transfer itself must give its share back.
  ['memory storage', { config: { storage: { kind: 'memory' as const } } }],
])('write windows are given back (%s)', (_label, options) => {
  let server: TestServer;
  let client: RxferClient;

  beforeEach(async () => {
    server = await startTestServer(options);
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  /** Windows are released a little after the replies (the commit, the session's end): poll. */
  const noneOpenEventually = async (): Promise<number> => {
    for (let i = 0; i < 200 && openWriteWindows() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    return openWriteWindows();
  };

  test('after stored, refused and interrupted uploads and downloads, no window still holds a share', async () => {
    // Server and client run in this process: their windows count together. None are open at the start.
    expect(await noneOpenEventually()).toBe(0);
    const data = randomBytes(3 * MiB);
    await client.uploadBuffer('kept.bin', data);
    expect((await client.downloadBuffer('kept.bin')).data.equals(data)).toBe(true);
    await client.download('kept.bin', `${server.scratch}/kept.bin`);
    await client.list('');

    const raw = await RawClient.connect(server.port);
    await raw.send(uploadRequest('wrong.bin', data, { sha256: sha256('something else') }));
    expect(await raw.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^ERR CHECKSUM_MISMATCH /)]);
    // And one cut off mid-data: the connection dies with 1 MiB of 3 sent.
    await raw.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\ncut.bin\n`), data.subarray(0, MiB)]));
    expect(await raw.readLine()).toBe('OK file recv');
    raw.destroy();

    expect(await noneOpenEventually()).toBe(0);
  });
});
