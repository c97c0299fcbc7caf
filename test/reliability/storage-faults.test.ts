import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { RxferConfig } from '../../src/config/config.schema';
import { TOKENS } from '../../src/container/tokens';
import type { RemoteName } from '../../src/protocol/remote-name';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import type { ReadHandle, ReadOptions, StagedWrite, WriteOptions } from '../../src/storage/storage-adapter';
import { RawClient, destroyAll, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, eventually, stagingFiles, startTestServer, storageOf, userFiles } from '../helpers/server';

/**
 * Issue 17, storage faults through the container: the real local adapter, rebound with a wrapper
 * that fails or hangs the call it is told to, once. Each failure must give the client one clean ERR
 * with a storage code, commit nothing, leave no staging file, descriptor or transfer slot behind,
 * and leave the connection (where the protocol allows) and the server serving.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

type Fault = 'openRead' | 'beginWrite' | 'write' | 'commit' | 'readMidStream' | 'list' | 'stat' | 'remove' | 'rename' | 'makeFolder' | 'hangWrite';

const eio = (call: string) => Object.assign(new Error(`EIO: i/o error, ${call} '/srv/secret/path'`), { code: 'EIO', errno: -5, syscall: call });

class FaultyStorage extends LocalFsStorage {
  /** The next call of this kind fails (or hangs); then the storage is healthy again. */
  next: Fault | undefined;

  private take(fault: Fault): boolean {
    if (this.next !== fault) return false;
    this.next = undefined;
    return true;
  }

  override async openRead(name: RemoteName, options?: ReadOptions): Promise<ReadHandle> {
    if (this.take('openRead')) throw eio('open');
    const handle = await super.openRead(name, options);
    if (!this.take('readMidStream')) return handle;
    // Half the file, then a read error, as a disk with a bad sector gives.
    const half = Math.floor((handle.file.size - handle.offset) / 2);
    let sent = 0;
    const failing = new PassThrough();
    handle.stream.on('data', (chunk: Buffer) => {
      if (sent >= half) return;
      const part = chunk.subarray(0, half - sent);
      sent += part.length;
      failing.write(part);
      if (sent >= half) {
        handle.stream.destroy();
        failing.destroy(eio('read'));
      }
    });
    return { ...handle, stream: failing as Readable };
  }

  override async beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    if (this.take('beginWrite')) throw eio('open');
    const staged = await super.beginWrite(name, options);
    if (this.take('write')) return withSink(staged, failAfter(staged.sink, 100 * KiB));
    // A disk (or mount) that takes one write and never answers again.
    if (this.take('hangWrite')) return withSink(staged, new Writable({ highWaterMark: 64 * KiB, write: () => undefined }));
    if (this.take('commit')) {
      return {
        ...withSink(staged, staged.sink),
        commit: async () => {
          // As an fsync or rename that fails: the real staged write gives its data up.
          await staged.abort();
          throw eio('fsync');
        },
      };
    }
    return staged;
  }

  override list(...args: Parameters<LocalFsStorage['list']>) {
    if (this.take('list')) return Promise.reject(eio('scandir'));
    return super.list(...args);
  }

  override stat(...args: Parameters<LocalFsStorage['stat']>) {
    if (this.take('stat')) return Promise.reject(eio('lstat'));
    return super.stat(...args);
  }

  override remove(...args: Parameters<LocalFsStorage['remove']>) {
    if (this.take('remove')) return Promise.reject(eio('unlink'));
    return super.remove(...args);
  }

  override rename(...args: Parameters<LocalFsStorage['rename']>) {
    if (this.take('rename')) return Promise.reject(eio('link'));
    return super.rename(...args);
  }

  override makeFolder(...args: Parameters<LocalFsStorage['makeFolder']>) {
    if (this.take('makeFolder')) return Promise.reject(eio('mkdir'));
    return super.makeFolder(...args);
  }
}

/** `staged` writing through another sink; abort and suspend still reach the real staged write. */
const withSink = (staged: StagedWrite, sink: Writable): StagedWrite => ({
  sink,
  resumed: staged.resumed,
  commit: (verified) => new Promise<void>((resolve, reject) => (sink === staged.sink ? resolve() : sink.end((err?: Error | null) => (err ? reject(err) : resolve())))).then(() => staged.commit(verified)),
  abort: () => {
    sink.destroy();
    return staged.abort();
  },
  suspend: () => {
    sink.destroy();
    return staged.suspend();
  },
});

/** Forwards to `inner` until `limit` bytes, then fails every write with EIO. */
const failAfter = (inner: Writable, limit: number): Writable => {
  let written = 0;
  const sink = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      written += chunk.length;
      if (written > limit) return done(eio('write'));
      inner.write(chunk, done);
    },
    final: (done) => inner.end(done),
  });
  sink.on('error', () => undefined);
  return sink;
};

const openDescriptors = (): number => readdirSync('/proc/self/fd').length;

describe('storage faults, injected through the container', () => {
  let server: TestServer;
  let storage: FaultyStorage;
  const clients: RawClient[] = [];
  let baselineFds: number;

  beforeEach(async () => {
    server = await startTestServer({
      config: { limits: { maxTransfersPerUser: 1, stallTimeoutMs: 1500, minBytesPerSecond: 1024 } },
      customize: (container) =>
        container
          .rebind(TOKENS.Storage)
          .toResolvedValue((config: RxferConfig) => new FaultyStorage(config.storage.root), [TOKENS.Config])
          .inSingletonScope(),
    });
    storage = storageOf(server) as FaultyStorage;
    await writeFile(join(server.root, 'keep.bin'), 'the previous version');
    baselineFds = openDescriptors();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  const connect = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };

  /** Nothing leaked: no staging data, descriptors back to the baseline, the one transfer slot free. */
  const nothingLeaked = async () => {
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 5000, 'staging data to be gone');
    // Each open test connection is two descriptors of this process (its socket and the server's).
    const expected = () => baselineFds + 2 * clients.filter((client) => !client.socket.destroyed).length;
    await eventually(() => openDescriptors() <= expected(), 5000, 'descriptors back to the baseline');
    const other = await connect();
    const data = randomBytes(2000);
    await other.send(uploadRequest('slot-check.bin', data));
    expect(await other.readUploadOutcome()).toBe(`OK file data recv 2000 ${sha256(data)}`);
    expect(await readFile(join(server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
  };

  /** The connection still serves: a STAT on it answers. */
  const stillServes = async (client: RawClient) => {
    await client.send('STAT\nkeep.bin\n');
    expect(await client.readLine()).toMatch(/^OK stat file 20 /);
  };

  test.each([
    ['the staging file cannot be opened', 'beginWrite', 300 * KiB],
    ['a write fails mid-data (staging file)', 'write', 300 * KiB],
    ['a write fails mid-data (kept partial)', 'write', 2 * MiB],
    ['the commit fails (fsync, rename)', 'commit', 300 * KiB],
    ['the commit fails, kept partial', 'commit', 2 * MiB],
    ['the commit fails, small file (the group-commit worker)', 'commit', 50 * KiB],
  ] as const)('upload: %s → one ERR STORAGE_FAILED, nothing stored, the connection goes on', async (_label, fault, size) => {
    const client = await connect();
    storage.next = fault;
    const data = randomBytes(size);
    await client.send(uploadRequest('keep.bin', data));
    const reply = await client.readUploadOutcome();
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*EIO/);
    expect(reply).not.toContain('/srv/secret');
    expect(await readFile(join(server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
    // Nothing kept for a resume either: the failure was the storage's, not the network's.
    await client.send('RESUME\nkeep.bin\n');
    expect(await client.readLine()).toMatch(/^NOT FOUND/);
    await stillServes(client);
    await nothingLeaked();
  });

  test.each([
    ['STAT', 'stat', 'STAT\nkeep.bin\n'],
    ['DELETE', 'remove', 'DELETE\nkeep.bin\n'],
    ['RENAME', 'rename', 'RENAME\nkeep.bin\nother.bin\n'],
    ['MKDIR', 'makeFolder', 'MKDIR\nnew-folder\n'],
    ['LIST', 'list', 'LIST\n\n'],
    ['DOWNLOAD (open)', 'openRead', 'DOWNLOAD\nkeep.bin\n'],
  ] as const)('%s fails in storage → one ERR STORAGE_FAILED, nothing changed, the connection goes on', async (_label, fault, request) => {
    const client = await connect();
    storage.next = fault;
    await client.send(request);
    const reply = await client.readLine();
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*EIO/);
    expect(reply).not.toContain('/srv/secret');
    expect(await userFiles(server.root)).toEqual(['keep.bin']);
    await stillServes(client);
    await nothingLeaked();
  });

  test('storage that takes no data for a stall window: ERR STORAGE_FAILED at the trailer, the socket let go, the connection and slot free', async () => {
    const client = await connect();
    storage.next = 'hangWrite';
    const data = randomBytes(6 * MiB);
    await client.send(uploadRequest('hung.bin', data));
    const reply = await client.readUploadOutcome(20_000);
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*took none/);
    expect(await userFiles(server.root)).toEqual(['keep.bin']);
    await stillServes(client);
    await nothingLeaked();
  }, 40_000);

  test('a read error mid-download cuts that connection (its bytes cannot be taken back); other clients go on', async () => {
    const data = randomBytes(4 * MiB);
    await writeFile(join(server.root, 'big.bin'), data);
    const client = await connect();
    storage.next = 'readMidStream';
    await client.send(downloadRequest('big.bin'));
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
    const rest = await client.waitClosed(10_000);
    // Fewer bytes than announced: the client knows the download failed (and its digest would not match).
    expect(rest.length).toBeLessThan(data.length);
    await nothingLeaked();
  });

});
