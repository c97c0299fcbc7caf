import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { RxferClient } from '../../src/client/index';
import { TOKENS } from '../../src/container/tokens';
import { WRITE_WINDOWS_TOTAL_BYTES, WRITE_WINDOW_HIGH_BYTES, bytesWaitingToBeWritten, openWriteWindows } from '../../src/io/write-window';
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
  /** The most that waited to be written in one upload's sink, and in all of them together. */
  mostWaiting = 0;
  mostWaitingTogether = 0;
  private readonly unfinished = new Set<Writable>();

  override async beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    const staged = await super.beginWrite(name, options);
    const slow: Writable = new Writable({
      highWaterMark: 64 * KiB,
      write: (chunk: Buffer, _encoding, done) => {
        this.mostWaiting = Math.max(this.mostWaiting, slow.writableLength);
        let together = 0;
        for (const sink of this.unfinished) together += sink.writableLength;
        this.mostWaitingTogether = Math.max(this.mostWaitingTogether, together);
        staged.sink.write(chunk);
        setTimeout(done, 1);
      },
    });
    this.unfinished.add(slow);
    slow.once('finish', () => this.unfinished.delete(slow)).once('close', () => this.unfinished.delete(slow));
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

  test('uploads pipelined behind one another are held while the data before them is still being written', async () => {
    const files = Array.from({ length: 10 }, (_, i) => ({ name: `piped/${i}.bin`, data: randomBytes(4 * MiB) }));
    const stored = await Promise.all(files.map((file) => client.uploadBuffer(file.name, file.data)));
    expect(stored).toEqual(files.map((file) => ({ size: file.data.length, digest: sha256(file.data) })));
    // Each upload's sink is still being written when the next upload's data arrives. Counted per
    // window only, each would let a lone transfer's 4 MiB wait beside the others (35 MiB together
    // when measured so); counted together, they stay within the process's total.
    expect(storage.mostWaitingTogether).toBeGreaterThan(WRITE_WINDOW_HIGH_BYTES);
    expect(storage.mostWaitingTogether).toBeLessThanOrEqual(WRITE_WINDOWS_TOTAL_BYTES + MiB);
    for (const file of files) expect((await client.downloadBuffer(file.name)).data.equals(file.data)).toBe(true);
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
    // And none of their bytes still counts once written: a count that leaked would hold every later
    // upload. (A window is closed when its feeder lets go; its bytes count until its sink has written
    // them: the cut upload's kept partial is flushed after the session ends.)
    for (let i = 0; i < 200 && bytesWaitingToBeWritten() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(bytesWaitingToBeWritten()).toBe(0);
  });
});
