import { readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { RxferConfig } from '../../../src/config/config.schema';
import { TOKENS } from '../../../src/container/tokens';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { LocalFsStorage } from '../../../src/storage/local-fs.storage';
import type { ReadHandle, ReadOptions, StagedWrite, WriteOptions } from '../../../src/storage/storage-adapter';
import { RawClient, destroyAll, sha256, uploadRequest } from '../../helpers/raw-client';
import { TestServer, eventually, stagingFiles, startTestServer, storageOf } from '../../helpers/server';
import { LiveTimers, trackLiveTimers } from './live-timers';

/**
 * Issue 17, storage faults through the container: the real local adapter, rebound with a wrapper
 * that fails or hangs the call it is told to, once, and a server around it whose tests can check
 * that nothing leaked (staging data, descriptors, live timers, the one transfer slot).
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;

export type Fault = 'openRead' | 'beginWrite' | 'write' | 'commit' | 'readMidStream' | 'list' | 'stat' | 'remove' | 'rename' | 'makeFolder' | 'hangWrite'
  // Calls that give no answer: reads answer late (after the deadline), so what they bring must be
  // given back; changes never answer (a dead mount), so nothing may have been changed.
  | 'hangOpenRead' | 'hangBeginWrite' | 'hangCommit' | 'hangReadMidStream' | 'hangList' | 'hangStat' | 'hangRemove' | 'hangRename' | 'hangMakeFolder';

/** The stall window of these tests' server, which is also the storage deadline. */
export const STALL_MS = 1500;
/** A late answer comes this long after the deadline has failed the request. */
export const lateBy = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, STALL_MS + 500));
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export const eio = (call: string) => Object.assign(new Error(`EIO: i/o error, ${call} '/srv/secret/path'`), { code: 'EIO', errno: -5, syscall: call });

export class FaultyStorage extends LocalFsStorage {
  /** The next call of this kind fails (or hangs); then the storage is healthy again. */
  next: Fault | undefined;
  /** The staged write a late beginWrite answered with (to check it was discarded). */
  lateStaged: StagedWrite | undefined;

  private take(fault: Fault): boolean {
    if (this.next !== fault) return false;
    this.next = undefined;
    return true;
  }

  override async openRead(name: RemoteName, options?: ReadOptions): Promise<ReadHandle> {
    if (this.take('openRead')) throw eio('open');
    if (this.take('hangOpenRead')) await lateBy();
    const handle = await super.openRead(name, options);
    if (this.take('hangReadMidStream')) {
      // Some data, then the disk stops answering: the stream neither ends nor fails.
      const stuck = new PassThrough();
      handle.stream.once('data', (chunk: Buffer) => {
        handle.stream.destroy();
        stuck.write(chunk.subarray(0, 64 * KiB));
      });
      return { ...handle, stream: stuck as Readable };
    }
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
    const late = this.take('hangBeginWrite');
    const staged = await super.beginWrite(name, options);
    if (late) {
      // The staging file exists by now: whoever gets it late must discard it.
      this.lateStaged = staged;
      await lateBy();
      return staged;
    }
    if (this.take('hangCommit')) return { ...withSink(staged, staged.sink), commit: never };
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
    if (this.take('hangList')) return lateBy().then(() => super.list(...args));
    if (this.take('list')) return Promise.reject(eio('scandir'));
    return super.list(...args);
  }

  override stat(...args: Parameters<LocalFsStorage['stat']>) {
    if (this.take('hangStat')) return lateBy().then(() => super.stat(...args));
    if (this.take('stat')) return Promise.reject(eio('lstat'));
    return super.stat(...args);
  }

  override remove(...args: Parameters<LocalFsStorage['remove']>) {
    if (this.take('hangRemove')) return never<number>();
    if (this.take('remove')) return Promise.reject(eio('unlink'));
    return super.remove(...args);
  }

  override rename(...args: Parameters<LocalFsStorage['rename']>) {
    if (this.take('hangRename')) return never<void>();
    if (this.take('rename')) return Promise.reject(eio('link'));
    return super.rename(...args);
  }

  override makeFolder(...args: Parameters<LocalFsStorage['makeFolder']>) {
    if (this.take('hangMakeFolder')) return never<void>();
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

export interface FaultHarness {
  readonly server: TestServer;
  readonly storage: FaultyStorage;
  connect(): Promise<RawClient>;
  /**
   * Nothing leaked: no staging data; once the test's connections are gone, descriptors and live
   * timers back to the baseline; the one transfer slot free.
   */
  nothingLeaked(): Promise<void>;
  /** The connection still serves: a STAT on it answers. */
  stillServes(client: RawClient): Promise<void>;
}

/** Registers the hooks of a describe block: a fresh server over FaultyStorage for each test. */
export const useFaultyServer = (): FaultHarness => {
  let server: TestServer;
  let storage: FaultyStorage;
  const clients: RawClient[] = [];
  let baselineFds: number;
  let baselineTimers: number;
  let timers: LiveTimers;

  beforeAll(() => (timers = trackLiveTimers()));
  afterAll(() => timers.restore());

  beforeEach(async () => {
    server = await startTestServer({
      config: { limits: { maxTransfersPerUser: 1, stallTimeoutMs: STALL_MS, minBytesPerSecond: 1024 } },
      customize: (container) =>
        container
          .rebind(TOKENS.Storage)
          .toResolvedValue((config: RxferConfig) => new FaultyStorage(config.storage.root), [TOKENS.Config])
          .inSingletonScope(),
    });
    storage = storageOf(server) as FaultyStorage;
    await writeFile(join(server.root, 'keep.bin'), 'the previous version');
    baselineFds = openDescriptors();
    baselineTimers = timers.count();
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

  /**
   * Nothing leaked: no staging data; once the test's connections are gone, descriptors and live
   * timers back to the baseline; the one transfer slot free.
   */
  const nothingLeaked = async () => {
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 5000, 'staging data to be gone');
    destroyAll(clients);
    await eventually(() => openDescriptors() <= baselineFds, 5000, `descriptors back to the baseline (${baselineFds}, now ${openDescriptors()})`);
    await eventually(() => timers.count() <= baselineTimers, 5000, `live timers back to the baseline (${baselineTimers}, now ${timers.count()})`);
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

  return {
    get server() {
      return server;
    },
    get storage() {
      return storage;
    },
    connect,
    nothingLeaked,
    stillServes,
  };
};
