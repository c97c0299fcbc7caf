// Must come first: it wraps node:fs before src/ takes its functions (see the module's comment).
import { failNext, failed, restoreFs } from '../promises/support/fs-faults';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { uploadTree } from '../../src/client/upload-tree';
import { RxferError } from '../../src/errors/rxfer-error';
import type { RemoteName } from '../../src/protocol/remote-name';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import { type SmallCommitJob, SmallCommits } from '../../src/storage/small-commits';
import type { CommittedFile, StagedWrite, VerifiedContent, WriteOptions } from '../../src/storage/storage-adapter';
import { SecureServer, SecureServerOptions, TestUser, makeUser } from '../security/support/server';
import { Wire, destroyAll, eventually, sha256 } from '../security/support/wire';
import { quotaProbes } from './support/quota-probes';
import { Gate, startServerOver } from './support/gated-storage';
import { ensureBuilt, rxfer } from '../helpers/cli';

/**
 * Hostile pass of 2026-12-05 (d), against commit 4f927ab: a change that took effect on the local
 * storage and whose folder fsync then failed is answered ERR NOT_DURABLE, never STORAGE_FAILED's
 * "nothing stored", and the quota ledger counts it as done. The class attacked: a reply that is
 * untrue about what storage did (nothing done while the change is there, done while it is not), or
 * a ledger that disagrees with the disk afterwards. Faults are real (fs-faults wraps node:fs; the
 * small-commit worker is given a folder that does not exist, so its own folder open fails after its
 * real rename); everything goes over real sockets.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const QUOTA = 16 * MiB;
const PREVIOUS = Buffer.from('the previous version');
const NOT_DURABLE = (what: string, why = 'EIO (i/o error)') =>
  `ERR NOT_DURABLE ${what}, but its folder could not be synced (${why}): a crash of the server could still undo that`;

/**
 * The real local storage, with two hostile hooks: the next small commit into a chosen folder is sent
 * to the worker with a folder that does not exist (its rename lands, its folder open then fails), and
 * a commit or DELETE that failed can be held before its error goes on (the storage deadline passing,
 * the connection reset meanwhile).
 */
class HostileStorage extends LocalFsStorage {
  /** The next small commit whose folder is this one has its folder fsync fail after the rename (EIO). */
  workerFolderFails: string | undefined;
  /** Held after a commit or remove failed, before its error goes on (one-shot). */
  holdFailure: Gate | undefined;

  override async init(): Promise<void> {
    await super.init();
    const commits = (this as unknown as { smallCommits: SmallCommits }).smallCommits;
    const real = commits.commit.bind(commits);
    const sums = (this as unknown as { digests: { logs: { directory: string } } }).digests.logs.directory;
    commits.commit = (job: SmallCommitJob) => {
      if (this.workerFolderFails === undefined || job.folder !== this.workerFolderFails) return real(job);
      const folder = this.workerFolderFails;
      this.workerFolderFails = undefined;
      // A commit worker of its own, whose fsync of this folder fails (SmallCommits' faults), for this one commit.
      const failing = new SmallCommits(sums, { failFolderFsyncs: [folder] });
      return failing.commit(job).finally(() => failing.close());
    };
  }

  private async heldFailure<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const gate = this.holdFailure;
      this.holdFailure = undefined;
      if (gate) {
        gate.arrived();
        await gate.opened;
      }
      throw err;
    }
  }

  override remove(...args: Parameters<LocalFsStorage['remove']>): Promise<number> {
    return this.heldFailure(() => super.remove(...args));
  }

  override async beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    const staged = await super.beginWrite(name, options);
    const held = <T>(work: () => Promise<T>) => this.heldFailure(work);
    return {
      get sink() {
        return staged.sink;
      },
      resumed: staged.resumed,
      abort: () => staged.abort(),
      suspend: () => staged.suspend(),
      commit: (verified: VerifiedContent): Promise<CommittedFile> => held(() => staged.commit(verified)),
    };
  }
}

describe('hostile 2026-12-05d: replies that must say what storage did (NOT_DURABLE and around it)', () => {
  let server: SecureServer;
  let storage: HostileStorage;
  let user: TestUser;
  const wires: Wire[] = [];
  const probes = quotaProbes(() => server, wires);
  afterAll(restoreFs);

  const start = async (options: SecureServerOptions = {}) => {
    user = await makeUser('q', 'write', 'q', QUOTA);
    ({ server, storage } = await startServerOver(user, (root) => new HostileStorage(root), options));
    await mkdir(join(server.root, 'q'), { recursive: true });
    await writeFile(join(server.root, 'q', 'keep.bin'), PREVIOUS);
    failed.length = 0;
  };
  afterEach(async () => {
    destroyAll(wires);
    await server?.close();
  });

  const userFolder = () => join(server.root, 'q');
  const partialsFolder = () => join(server.root, '.rxfer', 'partials');
  const stagingFolder = () => join(server.root, '.rxfer', 'staging');
  const armUserFolder = () => failNext('folder-sync', (path) => path === userFolder());
  const exists = (path: string) => stat(path).then(() => true, () => false);
  const keptData = async () => (await readdir(partialsFolder()).catch(() => [] as string[])).filter((name) => !name.endsWith('.json'));
  const noStagingData = async () => {
    await eventually(async () => (await readdir(stagingFolder())).length === 0, 'the staging folder to be empty');
  };

  /** An interrupted UPLOAD of `name` (1.5 MiB declared) whose first `sent` bytes are kept for RESUME. */
  const keepPartial = async (name: string, data: Buffer, total = 1.5 * MiB) => {
    const wire = await probes.open(user);
    await wire.send(`UPLOAD ${total}\n${name}\n`);
    expect(await wire.line()).toBe('OK file recv');
    await wire.send(data);
    await eventually(async () => {
      const [kept] = await keptData();
      return kept !== undefined && (await stat(join(partialsFolder(), kept)).catch(() => undefined))?.size === data.length;
    }, `${data.length} bytes kept`);
    wire.destroy();
    await wire.closed;
    const probe = await probes.open(user);
    await eventually(async () => {
      await probe.send(`RESUME\n${name}\n`);
      return (await probe.line()).startsWith('OK partial ');
    }, `the kept upload of ${name} to be released`);
  };

  const resume = async (wire: Wire, name: string) => {
    await wire.send(`RESUME\n${name}\n`);
    return wire.line();
  };

  // ---- after the visible change ------------------------------------------------------------------

  describe('an error after the visible change: the reply says the change is there, the ledger counts it', () => {
    beforeEach(() => start());

    /** RENAME big.bin → moved.bin, the unlink of big.bin after its link to moved.bin failing. */
    const renameWithOldNameStuck = async (size: number) => {
      const data = randomBytes(size);
      await writeFile(join(userFolder(), 'big.bin'), data);
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      failNext('unlink', (path) => path === join(userFolder(), 'big.bin'));
      await wire.send('RENAME\nbig.bin\nmoved.bin\n');
      const reply = await wire.line();
      expect(failed.map((entry) => entry.call)).toEqual(['unlink']);
      const onDisk = { old: await exists(join(userFolder(), 'big.bin')), new: await exists(join(userFolder(), 'moved.bin')) };
      return { reply, onDisk };
    };

    test.each([
      ['a large file (sidecar digest)', 3 * MiB],
      ['a small file (digest log)', 20 * KiB],
    ])('RENAME of %s whose old name cannot be unlinked after the link: a rename leaves one of the two names, and the reply says which', async (_what, size) => {
      const { reply, onDisk } = await renameWithOldNameStuck(size);
      const saysRenamed = reply === 'OK renamed' || reply.startsWith('ERR NOT_DURABLE ');
      expect({ reply, onDisk }).toEqual({ reply, onDisk: saysRenamed ? { old: false, new: true } : { old: true, new: false } });
    });

    test('RENAME whose old name cannot be unlinked after the link: the ledger matches the disk afterwards', async () => {
      await renameWithOldNameStuck(3 * MiB);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('DELETE of a kept upload whose data file cannot be unlinked: not answered "deleted" while RESUME still offers it', async () => {
      const prefix = randomBytes(512 * KiB);
      await keepPartial('gone.bin', prefix);
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      failNext('unlink', (path) => path.startsWith(partialsFolder() + '/') && !path.endsWith('.json'));
      await wire.send('DELETE\ngone.bin\n');
      const reply = await wire.line();
      expect(failed.map((entry) => entry.call)).toEqual(['unlink']);
      await probes.expectLedgerMatchesDisk(user);
      const offered = await resume(wire, 'gone.bin');
      // "OK deleted" promises the kept upload is gone (PROTOCOL.md, DELETE); an error, that it is still there.
      expect({ reply, offered }).toEqual(reply === 'OK deleted' ? { reply, offered: 'NOT FOUND no interrupted upload of gone.bin is kept' } : { reply, offered });
    });

    test('UPLOAD over a name with a kept upload, NOT_DURABLE: the upload was made, so it started over (nothing kept), and the ledger agrees', async () => {
      await keepPartial('keep.bin', randomBytes(700 * KiB));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const data = randomBytes(200 * KiB);
      armUserFolder();
      expect(await wire.upload('keep.bin', data)).toEqual(['OK file recv', NOT_DURABLE('keep.bin is stored')]);
      expect(sha256(await readFile(join(userFolder(), 'keep.bin')))).toBe(sha256(data));
      await probes.expectLedgerMatchesDisk(user);
      // PROTOCOL.md: "A plain UPLOAD of the name starts over and replaces what was kept", as the same
      // upload with a synced folder does.
      expect(await resume(wire, 'keep.bin')).toMatch(/^NOT FOUND/);
      expect(await keptData()).toEqual([]);
    });

    test('UPLOAD … FROM (a resumed upload) whose folder fsync fails: NOT_DURABLE, the whole file in place, nothing kept, the ledger agrees', async () => {
      const whole = randomBytes(1.5 * MiB);
      const offset = 512 * KiB;
      await keepPartial('resumed.bin', whole.subarray(0, offset));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      armUserFolder();
      await wire.send(`UPLOAD ${whole.length} FROM ${offset} ${sha256(whole.subarray(0, offset))}\nresumed.bin\n`);
      expect(await wire.line()).toBe('OK file recv');
      await wire.send(Buffer.concat([whole.subarray(offset), Buffer.from(`SHA256 ${sha256(whole)}\n`)]));
      expect(await wire.line()).toBe(NOT_DURABLE('resumed.bin is stored'));
      expect(sha256(await readFile(join(userFolder(), 'resumed.bin')))).toBe(sha256(whole));
      expect(await resume(wire, 'resumed.bin')).toMatch(/^NOT FOUND/);
      expect(await keptData()).toEqual([]);
      await probes.expectLedgerMatchesDisk(user);
    });

    test.each([
      ['UPLOAD over a file', 'UPLOAD', 'keep.bin'],
      ['ADDFILE', 'ADDFILE', 'added.bin'],
    ] as const)('small file (worker), %s, its folder fsync failing after the rename: NOT_DURABLE over the socket, STAT knows its digest, the ledger counts it', async (_what, verb, name) => {
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const data = randomBytes(30 * KiB);
      storage.workerFolderFails = userFolder();
      const [header, outcome] = await wire.upload(name, data, verb);
      expect(header).toBe('OK file recv');
      expect(storage.workerFolderFails).toBeUndefined();
      expect(outcome).toBe(NOT_DURABLE(`${name} is stored`, 'EIO (injected folder fsync failure)'));
      expect(sha256(await readFile(join(userFolder(), name)))).toBe(sha256(data));
      await wire.send(`STAT\n${name}\n`);
      expect(await wire.line()).toMatch(new RegExp(`^OK stat file ${data.length} ${sha256(data)} \\d+$`));
      await noStagingData();
      // Served in order after it, on the same connection.
      expect(await wire.upload('after.bin', 'x')).toEqual(['OK file recv', `OK file data recv 1 ${sha256('x')}`]);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('small UPLOAD (worker) over a name with a kept upload, NOT_DURABLE: nothing kept afterwards, the ledger agrees', async () => {
      await keepPartial('keep.bin', randomBytes(600 * KiB));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const data = randomBytes(10 * KiB);
      storage.workerFolderFails = userFolder();
      expect(await wire.upload('keep.bin', data)).toEqual(['OK file recv', NOT_DURABLE('keep.bin is stored', 'EIO (injected folder fsync failure)')]);
      expect(sha256(await readFile(join(userFolder(), 'keep.bin')))).toBe(sha256(data));
      await probes.expectLedgerMatchesDisk(user);
      expect(await resume(wire, 'keep.bin')).toMatch(/^NOT FOUND/);
    });

    /**
     * An ADDFILE of a resumable size whose kept partial's path cannot be unlinked after its link: stored
     * (4f927ab), the partial's path left as a second link to the stored file, its manifest forgotten.
     */
    const addFileWithStuckPartialPath = async (wire: Wire, data: Buffer) => {
      await wire.send(`ADDFILE ${data.length}\nadded.bin\n`);
      expect(await wire.line()).toBe('OK file recv');
      failNext('unlink', (path) => path.startsWith(partialsFolder() + '/') && !path.endsWith('.json'));
      await wire.send(Buffer.concat([data, Buffer.from(`SHA256 ${sha256(data)}\n`)]));
      expect(await wire.line()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
      expect(failed.map((entry) => entry.call)).toEqual(['unlink']);
    };

    test('ADDFILE whose partial path cannot be unlinked after the link, then DELETE of the file: the ledger frees it once, not twice', async () => {
      // Another file, so that a count freed twice shows in full (the ledger never goes below 0).
      await writeFile(join(userFolder(), 'other.bin'), randomBytes(4 * MiB));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      await addFileWithStuckPartialPath(wire, randomBytes(3 * MiB));
      await probes.expectLedgerMatchesDisk(user);
      await wire.send('DELETE\nadded.bin\n');
      expect(await wire.line()).toBe('OK deleted');
      expect(await exists(join(userFolder(), 'added.bin'))).toBe(false);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('ADDFILE whose partial path cannot be unlinked after the link, then an UPLOAD … FROM of that name: refused, the stored file untouched, the ledger still matches the disk', async () => {
      const data = randomBytes(3 * MiB);
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      await addFileWithStuckPartialPath(wire, data);
      // RESUME knows nothing kept (the path is a second link to a stored file) ...
      expect(await resume(wire, 'added.bin')).toMatch(/^NOT FOUND/);
      // ... but a client may send a resume point all the same.
      const offset = 1 * MiB;
      await wire.send(`UPLOAD ${data.length} FROM ${offset} ${sha256(data.subarray(0, offset))}\nadded.bin\n`);
      expect(await wire.line()).toMatch(/^ERR RESUME_MISMATCH /);
      expect(sha256(await readFile(join(userFolder(), 'added.bin')))).toBe(sha256(data));
      await probes.expectLedgerMatchesDisk(user);
    });

    test('RENAME into another folder whose fsync fails (the source folder synced): NOT_DURABLE, renamed, ledger unchanged', async () => {
      await mkdir(join(userFolder(), 'sub'));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      failNext('folder-sync', (path) => path === join(userFolder(), 'sub'));
      await wire.send('RENAME\nkeep.bin\nsub/moved.bin\n');
      expect(await wire.line()).toBe(NOT_DURABLE('keep.bin is renamed to sub/moved.bin'));
      expect(await readFile(join(userFolder(), 'sub', 'moved.bin'))).toEqual(PREVIOUS);
      expect(await exists(join(userFolder(), 'keep.bin'))).toBe(false);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('DELETE of a file that also has a kept upload, NOT_DURABLE: both gone, both freed', async () => {
      await writeFile(join(userFolder(), 'both.bin'), randomBytes(2 * MiB));
      await keepPartial('both.bin', randomBytes(800 * KiB));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      armUserFolder();
      await wire.send('DELETE\nboth.bin\n');
      expect(await wire.line()).toBe(NOT_DURABLE('both.bin is deleted'));
      expect(await exists(join(userFolder(), 'both.bin'))).toBe(false);
      expect(await resume(wire, 'both.bin')).toMatch(/^NOT FOUND/);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('DELETE of an empty folder and MKDIR of nested folders, NOT_DURABLE: done, said so, connection goes on', async () => {
      await mkdir(join(userFolder(), 'empty'));
      const wire = await probes.open(user);
      armUserFolder();
      await wire.send('DELETE\nempty\n');
      expect(await wire.line()).toBe(NOT_DURABLE('empty is deleted'));
      expect(await exists(join(userFolder(), 'empty'))).toBe(false);
      failNext('folder-sync', (path) => path === join(userFolder(), 'a', 'b'));
      await wire.send('MKDIR\na/b/c\n');
      expect(await wire.line()).toBe(NOT_DURABLE('the folder a/b/c is created'));
      expect((await stat(join(userFolder(), 'a', 'b', 'c'))).isDirectory()).toBe(true);
      await wire.send('STAT\na/b/c\n');
      expect(await wire.line()).toMatch(/^OK stat folder 0 - \d+$/);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('pipelined requests behind a NOT_DURABLE upload: all served, in order, on the same connection', async () => {
      const wire = await probes.open(user);
      const first = randomBytes(300 * KiB);
      const second = randomBytes(100 * KiB);
      armUserFolder();
      await wire.send(
        Buffer.concat([
          Buffer.from(`UPLOAD ${first.length}\na.bin\n`),
          first,
          Buffer.from(`SHA256 ${sha256(first)}\n`),
          Buffer.from('STAT\na.bin\n'),
          Buffer.from(`ADDFILE ${second.length}\na.bin\n`),
          second,
          Buffer.from(`SHA256 ${sha256(second)}\n`),
          Buffer.from(`UPLOAD ${second.length}\nb.bin\n`),
          second,
          Buffer.from(`SHA256 ${sha256(second)}\n`),
          Buffer.from('RENAME\nb.bin\nc.bin\nDELETE\nkeep.bin\nMKDIR\nd\n'),
        ]),
      );
      const replies: string[] = [];
      for (let i = 0; i < 9; i++) replies.push(await wire.line());
      expect(replies[0]).toBe('OK file recv');
      expect(replies[1]).toBe(NOT_DURABLE('a.bin is stored'));
      expect(replies[2]).toMatch(new RegExp(`^OK stat file ${first.length} ${sha256(first)} \\d+$`));
      // The ADDFILE after the NOT_DURABLE upload meets the file it put there (refused at its header, its data dropped).
      expect(replies[3]).toMatch(/^ERR EXISTS /);
      expect(replies.slice(4)).toEqual(['OK file recv', `OK file data recv ${second.length} ${sha256(second)}`, 'OK renamed', 'OK deleted', 'OK created']);
      expect(sha256(await readFile(join(userFolder(), 'a.bin')))).toBe(sha256(first));
      await probes.expectLedgerMatchesDisk(user);
    });
  });

  // ---- the deadline, the connection reset, between the change and the reply -------------------

  describe('between the change and its reply: the storage deadline, a reset connection', () => {
    beforeEach(() => start({ limits: { stallTimeoutMs: 500 } }));

    test('the deadline passes while a NOT_DURABLE commit is on its way back: never "nothing stored"; once it ends, the ledger counts the file', async () => {
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const data = randomBytes(300 * KiB);
      const gate = (storage.holdFailure = new Gate());
      armUserFolder();
      await wire.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nkeep.bin\n`), data, Buffer.from(`SHA256 ${sha256(data)}\n`)]));
      expect(await wire.line()).toBe('OK file recv');
      await gate.reached;
      const reply = await wire.line();
      expect(reply).toMatch(/^ERR (STORAGE_FAILED storage did not store keep\.bin within 500 ms; it may still take effect|NOT_DURABLE )/);
      expect(reply).not.toMatch(/nothing stored/);
      gate.open();
      expect(sha256(await readFile(join(userFolder(), 'keep.bin')))).toBe(sha256(data));
      await probes.expectLedgerMatchesDisk(user);
      // The connection goes on.
      await wire.send('STAT\nkeep.bin\n');
      expect(await wire.line()).toMatch(/^OK stat file /);
    });

    test('the deadline passes while a NOT_DURABLE DELETE is on its way back: the ledger frees the file once it ends', async () => {
      await writeFile(join(userFolder(), 'big.bin'), randomBytes(3 * MiB));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const gate = (storage.holdFailure = new Gate());
      armUserFolder();
      await wire.send('DELETE\nbig.bin\n');
      await gate.reached;
      const reply = await wire.line();
      expect(reply).toMatch(/^ERR (STORAGE_FAILED storage did not delete big\.bin within 500 ms; it may still take effect|NOT_DURABLE )/);
      gate.open();
      expect(await exists(join(userFolder(), 'big.bin'))).toBe(false);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('the connection reset between a NOT_DURABLE commit and its reply: the file counted as stored, no staging data, the server serves on', async () => {
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const data = randomBytes(1.5 * MiB);
      const gate = (storage.holdFailure = new Gate());
      armUserFolder();
      await wire.send(Buffer.concat([Buffer.from(`ADDFILE ${data.length}\nfresh.bin\n`), data, Buffer.from(`SHA256 ${sha256(data)}\n`)]));
      expect(await wire.line()).toBe('OK file recv');
      await gate.reached;
      wire.destroy();
      await wire.closed;
      gate.open();
      expect(sha256(await readFile(join(userFolder(), 'fresh.bin')))).toBe(sha256(data));
      await noStagingData();
      await eventually(async () => (await keptData()).length === 0, 'no kept upload of the stored file');
      const again = await probes.open(user);
      expect((await again.upload('fresh.bin', data, 'ADDFILE'))[0]).toMatch(/^ERR EXISTS /);
      await probes.expectLedgerMatchesDisk(user);
    });
  });

  // ---- before the visible change -----------------------------------------------------------------

  describe('an error before the visible change: "nothing stored", the name as it was, the ledger unchanged', () => {
    beforeEach(() => start());

    const staged = (path: string) => path.startsWith(join(server.root, '.rxfer') + '/');

    test.each([
      ['fsync of the staging file', 'fsync', 200 * KiB],
      ['close of the staging file', 'close', 200 * KiB],
      ['rename into place', 'rename', 200 * KiB],
      ['fsync of the kept partial', 'fsync', 1.5 * MiB],
      ['rename of the kept partial into place', 'rename', 1.5 * MiB],
    ] as const)('UPLOAD over a file, %s fails (%s, %d bytes): STORAGE_FAILED, the old file there, nothing kept', async (_what, call, size) => {
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      const data = randomBytes(size);
      failNext(call, staged);
      const [header, outcome] = await wire.upload('keep.bin', data);
      expect(header).toBe('OK file recv');
      expect(failed.map((entry) => entry.call)).toEqual([call]);
      expect(outcome).toMatch(/^ERR STORAGE_FAILED /);
      expect(await readFile(join(userFolder(), 'keep.bin'))).toEqual(PREVIOUS);
      await noStagingData();
      expect(await keptData()).toEqual([]);
      await probes.expectLedgerMatchesDisk(user);
    });

    test.each([
      ['a fresh staging file', 200 * KiB],
      ['a kept partial', 1.5 * MiB],
    ])('ADDFILE whose link fails (%s): STORAGE_FAILED, no file, a second ADDFILE stores it', async (_what, size) => {
      const wire = await probes.open(user);
      const data = randomBytes(size);
      failNext('link', staged);
      const [, outcome] = await wire.upload('added.bin', data, 'ADDFILE');
      expect(failed.map((entry) => entry.call)).toEqual(['link']);
      expect(outcome).toMatch(/^ERR STORAGE_FAILED /);
      expect(await exists(join(userFolder(), 'added.bin'))).toBe(false);
      await noStagingData();
      await probes.expectLedgerMatchesDisk(user);
      expect(await wire.upload('added.bin', data, 'ADDFILE')).toEqual(['OK file recv', `OK file data recv ${size} ${sha256(data)}`]);
      await probes.expectLedgerMatchesDisk(user);
    });

    test('DELETE whose unlink fails, RENAME whose link fails: STORAGE_FAILED, nothing changed', async () => {
      await writeFile(join(userFolder(), 'big.bin'), randomBytes(2 * MiB));
      const wire = await probes.open(user);
      await probes.expectLedgerMatchesDisk(user);
      failNext('unlink', (path) => path === join(userFolder(), 'big.bin'));
      await wire.send('DELETE\nbig.bin\n');
      expect(await wire.line()).toMatch(/^ERR STORAGE_FAILED cannot delete big\.bin: EIO/);
      expect((await stat(join(userFolder(), 'big.bin'))).size).toBe(2 * MiB);
      failNext('link', (path) => path === join(userFolder(), 'big.bin'));
      await wire.send('RENAME\nbig.bin\nmoved.bin\n');
      expect(await wire.line()).toMatch(/^ERR STORAGE_FAILED cannot rename big\.bin: EIO/);
      expect(await exists(join(userFolder(), 'moved.bin'))).toBe(false);
      expect(failed.map((entry) => entry.call)).toEqual(['unlink', 'link']);
      await probes.expectLedgerMatchesDisk(user);
    });
  });

  // ---- the client library and the CLI ------------------------------------------------------------

  describe('the client: a NOT_DURABLE file is a failure, told as what it is', () => {
    let local: string;
    beforeAll(() => ensureBuilt(), 120_000);
    beforeEach(async () => {
      await start();
      local = await mkdtemp(join(tmpdir(), 'rxfer-nd-client-'));
    });
    afterEach(() => rm(local, { recursive: true, force: true }));

    const treeOf = async (count: number, size: number) => {
      const dir = join(local, 'tree');
      await mkdir(dir);
      for (let i = 0; i < count; i++) await writeFile(join(dir, `f${i}.bin`), randomBytes(size));
      return dir;
    };

    test('uploadTree (put -r): fails with NOT_DURABLE, and does not say the files in place "were not stored"', async () => {
      const dir = await treeOf(3, 200 * KiB);
      await mkdir(join(userFolder(), 'tree'));
      const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, token: user.token });
      try {
        failNext('folder-sync', (path) => path === join(userFolder(), 'tree'));
        const err = await uploadTree(client, dir, 'tree').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(failed.map((entry) => entry.call)).toEqual(['folder-sync']);
        expect(err).toBeInstanceOf(RxferError);
        expect((err as RxferError).code).toBe('NOT_DURABLE');
        // Every file is in place on the server.
        for (let i = 0; i < 3; i++) expect(await readFile(join(userFolder(), 'tree', `f${i}.bin`))).toEqual(await readFile(join(dir, `f${i}.bin`)));
        // The files that answered NOT_DURABLE are stored: "N of M files were not stored" is untrue of them.
        expect((err as RxferError).message).not.toMatch(/were not stored/);
      } finally {
        client.close();
      }
      await probes.expectLedgerMatchesDisk(user);
    });

    test('rxfer put: exit 1, ERR NOT_DURABLE on stderr, no summary of a verified copy', async () => {
      const file = join(local, 'one.bin');
      await writeFile(file, randomBytes(300 * KiB));
      armUserFolder();
      const run = await rxfer(['put', file, 'one.bin', '-p', String(server.port)], { env: { RXFER_TOKEN: user.token } });
      expect(failed.map((entry) => entry.call)).toEqual(['folder-sync']);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('rxfer: ERR NOT_DURABLE one.bin is stored, but its folder could not be synced (EIO (i/o error))');
      expect(run.stderr).not.toMatch(/TypeError|at .*\.js:\d+/);
      armUserFolder();
      const json = await rxfer(['put', file, 'two.bin', '-p', String(server.port), '--json'], { env: { RXFER_TOKEN: user.token } });
      expect(json.code).toBe(1);
      expect(json.stdout).toBe('');
      expect(JSON.parse(json.stderr.trim())).toMatchObject({ code: 'NOT_DURABLE', exit: 1 });
      expect(await readFile(join(userFolder(), 'two.bin'))).toEqual(await readFile(file));
    });

    test('rxfer put -r: exit 1, NOT_DURABLE on stderr, no "put -r … files" summary, and no claim that stored files were not stored', async () => {
      const dir = await treeOf(3, 200 * KiB);
      await mkdir(join(userFolder(), 'tree'));
      failNext('folder-sync', (path) => path === join(userFolder(), 'tree'));
      const run = await rxfer(['put', '-r', dir, 'tree', '-p', String(server.port)], { env: { RXFER_TOKEN: user.token } });
      expect(failed.map((entry) => entry.call)).toEqual(['folder-sync']);
      expect(run.code).toBe(1);
      expect(run.stdout).not.toMatch(/put -r/);
      expect(run.stderr).toMatch(/^rxfer: ERR NOT_DURABLE /);
      expect(run.stderr).not.toMatch(/TypeError|at .*\.js:\d+/);
      expect(run.stderr).not.toMatch(/were not stored/);
      await probes.expectLedgerMatchesDisk(user);
    });
  });
});
