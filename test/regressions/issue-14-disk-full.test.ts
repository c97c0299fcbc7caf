import { createHash, randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient, RxferError } from '../../src/client/index';
import { RawClient, destroyAll, downloadRequest, uploadRequest } from '../helpers/raw-client';
import { TestServer, eventually, listFiles, stagingFiles, startTestServer } from '../helpers/server';
import { FILLER_PREFIX, Tmpfs, emptyTmpfs, fillTo, fillToSync, freeBytes, hookWrites, unfill, usedBytes, withTmpfs, tmpfsTest } from '../helpers/tmpfs';

/**
 * Issue 14, over a real disk that fills up: a 24 MiB tmpfs (the was 64 MiB with a 16 MiB
 * file and two 26 MiB uploads; the proportions are kept, the sizes cut so that the 56 rounds here
 * take well under a minute). In every round, each name either holds exactly the bytes that were
 * sent or does not exist (or still holds its previous version), the client's outcome says which
 * (success ⇔ exact bytes stored), a full disk is reported as NO_SPACE (LOCAL_IO for the client's
 * own disk), and no staging data is left behind, visible or not (a deleted file still held open
 * keeps its space). The command line is tested the same way in issue-14-disk-full-cli.test.ts.
 *
 * Needs root to mount the tmpfs; without it every test prints why and passes.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Generous failure guards for replies: a loaded 2-core box is slow. Not timing assertions. */
const REPLY_TIMEOUT_MS = 30_000;
/**
 * Space the tmpfs may hold beyond the blocks of the files one can see in it: none is expected (a
 * directory costs no blocks on tmpfs); anything more is data of a deleted file still held open.
 */
const HIDDEN_SLACK_BYTES = 16 * KiB;

let disk: Tmpfs;

beforeAll(async () => {
  disk = await withTmpfs(24 * MiB);
  if (!disk.canMount) console.warn(`issue-14 disk-full tests are skipped: ${disk.reason}`);
});
afterAll(async () => {
  await disk?.cleanup();
});

/** A test that needs the tmpfs (see tmpfsTest). */
const onTmpfs = tmpfsTest(() => disk);

// ---------------------------------------------------------------------------------------------
// What a round checks

type Outcome = { ok: true; size: number; digest: string } | { ok: false; code: string; message: string };

/** A raw upload's final reply (or its refusal at the header), as an outcome. */
const outcomeOf = (reply: string): Outcome => {
  const ok = /^OK file data recv (\d+) ([0-9a-f]{64})$/.exec(reply);
  if (ok) return { ok: true, size: Number(ok[1]), digest: ok[2]! };
  const err = /^ERR (\S+) ?(.*)$/.exec(reply);
  return err ? { ok: false, code: err[1]!, message: err[2]! } : { ok: false, code: `unexpected reply: ${reply}`, message: '' };
};

/** A library call's outcome. */
const settle = (call: Promise<{ size: number; digest: string }>): Promise<Outcome> =>
  call.then(
    ({ size, digest }) => ({ ok: true, size, digest }),
    (err: unknown) => ({ ok: false, code: err instanceof RxferError ? err.code : `not an RxferError: ${String(err)}`, message: (err as Error).message }),
  );

/** What `path` holds now, compared with what was sent (and what it held before, if anything). */
const storedAs = async (path: string, sent: Buffer, previous?: Buffer): Promise<string> => {
  const data = await readFile(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  if (data === undefined) return 'absent';
  if (data.equals(sent)) return 'exact';
  if (previous?.equals(data)) return 'previous';
  const same = data.subarray(0, Math.min(data.length, sent.length)).equals(sent.subarray(0, data.length));
  return `corrupt: ${data.length} bytes of ${sent.length}${same ? ' (a prefix of what was sent)' : ''}`;
};

/**
 * The round's verdict for one name: success ⇔ the exact bytes are stored under it; a failure has
 * `failureCode` (NO_SPACE: the disk was full) and leaves the name absent, or holding `previous`.
 */
const expectConsistent = async (context: string, path: string, outcome: Outcome, sent: Buffer, options: { previous?: Buffer; failureCode?: string } = {}): Promise<void> => {
  const stored = await storedAs(path, sent, options.previous);
  if (outcome.ok) {
    expect({ context, outcome: 'success', stored, size: outcome.size, digest: outcome.digest }).toEqual({
      context,
      outcome: 'success',
      stored: 'exact',
      size: sent.length,
      digest: sha256(sent),
    });
  } else {
    // The message rides along (any string matches) so that a failure shows it.
    expect({ context, outcome: 'failure', stored, code: outcome.code, message: outcome.message }).toEqual({
      context,
      outcome: 'failure',
      stored: options.previous ? 'previous' : 'absent',
      code: options.failureCode ?? 'NO_SPACE',
      message: expect.any(String),
    });
  }
};

/** No staging file anywhere under the root, and no kept partial upload (data or manifest). */
const expectNothingStaged = async (root: string, context: string): Promise<void> => {
  const partials = await listFiles(join(root, '.rxfer', 'partials'));
  expect({ context, staging: await stagingFiles(root), partials }).toEqual({ context, staging: [], partials: [] });
};

/** Bytes the files one can see in `dir` take (blocks, not sizes). */
const visibleBytes = async (dir: string): Promise<number> => {
  let total = 0;
  for (const path of await listFiles(dir)) total += ((await lstat(join(dir, path)).catch(() => undefined))?.blocks ?? 0) * 512;
  return total;
};

/**
 * The tmpfs holds no more than its visible files: a staging file deleted but still open (its space
 * not given back) would show here. Waits (a failure guard) for closes still in flight.
 */
const expectNoHiddenData = async (context: string): Promise<void> => {
  const hidden = async () => usedBytes(disk.dir) - (await visibleBytes(disk.dir));
  await eventually(async () => (await hidden()) <= HIDDEN_SLACK_BYTES, 5000, 'deleted staging data to be released').catch(() => undefined);
  expect({ context, hiddenBytesOver16KiB: Math.max(0, (await hidden()) - HIDDEN_SLACK_BYTES) }).toEqual({ context, hiddenBytesOver16KiB: 0 });
};

// ---------------------------------------------------------------------------------------------
// A server whose storage root is on the tmpfs, fresh each round

interface Round {
  readonly server: TestServer;
  /** The storage root, on the tmpfs. */
  readonly root: string;
  readonly raw: RawClient[];
  readonly clients: RxferClient[];
}

/** Runs one round against a fresh server on an emptied tmpfs, and always cleans up after it. */
const round = async (body: (r: Round) => Promise<void>): Promise<void> => {
  await emptyTmpfs(disk.dir);
  const root = join(disk.dir, 'root');
  await mkdir(root);
  const server = await startTestServer({ config: { storage: { root } } });
  const r: Round = { server, root, raw: [], clients: [] };
  try {
    await body(r);
  } finally {
    destroyAll(r.raw);
    for (const client of r.clients) client.close();
    await server.close();
    await emptyTmpfs(disk.dir);
  }
};

const rawClient = async (r: Round): Promise<RawClient> => {
  const client = await RawClient.connect(r.server.port);
  r.raw.push(client);
  return client;
};

const libraryClient = async (r: Round): Promise<RxferClient> => {
  const client = await RxferClient.connect({ host: r.server.host, port: r.server.port });
  r.clients.push(client);
  return client;
};

// ---------------------------------------------------------------------------------------------

describe('issue 14: a full disk never turns into a reported success', () => {
  /**
   * The race: 16 MiB free, two 9 MiB uploads at once on two connections (both pass the
   * free-space check at their header; only one fits). Before the fix, a staging write failed with
   * ENOSPC, the commit ignored it, and the client was told `OK` for a short file.
   */
  onTmpfs(
    'a. two uploads racing for room for one (library, 16 rounds): each name holds its exact bytes or nothing, and its client is told which',
    async () => {
      for (let i = 0; i < 16; i++) {
        await round(async (r) => {
          const sources = [randomBytes(9 * MiB), randomBytes(9 * MiB)];
          const paths = sources.map((_, k) => join(r.server.scratch, `m${k + 1}.bin`));
          await Promise.all(sources.map((data, k) => writeFile(paths[k]!, data)));
          await fillTo(disk.dir, 16 * MiB);
          const clients = [await libraryClient(r), await libraryClient(r)];
          const outcomes = await Promise.all(clients.map((client, k) => settle(client.upload(paths[k]!, `m${k + 1}.bin`))));
          for (const [k, outcome] of outcomes.entries()) {
            await expectConsistent(`round ${i}, m${k + 1}.bin`, join(r.root, `m${k + 1}.bin`), outcome, sources[k]!);
          }
          // 18 MiB cannot fit in 16: at least one was refused (holds whatever the timing was). Both
          // may be: each may meet the full disk before the other's staging data is deleted.
          expect(outcomes.filter((outcome) => outcome.ok).length).toBeLessThanOrEqual(1);
          await expectNothingStaged(r.root, `round ${i}`);
          await expectNoHiddenData(`round ${i}`);
        });
      }
    },
    180_000,
  );

  /**
   * Small files go through the worker (SmallCommits): with 256 KiB free, 24 uploads of 16–64 KiB
   * pipelined in one write on one connection. Those told `OK file data recv` are byte-exact, the
   * others got NO_SPACE and are absent; once the space is freed, the same connection stores them.
   */
  onTmpfs(
    'b. small uploads (≤ 64 KiB, the worker path) pipelined into a nearly full disk (6 rounds): OK ⇔ exact, the rest NO_SPACE and absent',
    async () => {
      for (let i = 0; i < 6; i++) {
        await round(async (r) => {
          const files = Array.from({ length: 24 }, (_, k) => ({ name: `small/${k}.bin`, data: randomBytes(16 * KiB + ((k * 7919 + i * 104729) % (48 * KiB + 1))) }));
          await fillTo(disk.dir, 256 * KiB);
          const free = freeBytes(disk.dir);
          const client = await rawClient(r);
          await client.send(Buffer.concat(files.map((file) => uploadRequest(file.name, file.data))));
          const outcomes: Outcome[] = [];
          for (const _ of files) outcomes.push(outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS)));
          for (const [k, file] of files.entries()) await expectConsistent(`round ${i}, ${file.name}`, join(r.root, file.name), outcomes[k]!, file.data);
          const stored = files.filter((_, k) => outcomes[k]!.ok);
          // The first fits whatever happens after it; not all can (≈ 1 MiB into 256 KiB).
          expect(outcomes[0]).toMatchObject({ ok: true });
          expect(stored.reduce((sum, file) => sum + file.data.length, 0)).toBeLessThanOrEqual(free);
          expect(stored.length).toBeLessThan(files.length);
          await expectNothingStaged(r.root, `round ${i}`);
          await expectNoHiddenData(`round ${i}`);

          // The same connection, once there is room: every refused file goes through.
          await unfill(disk.dir);
          const again = files.filter((_, k) => !outcomes[k]!.ok);
          await client.send(Buffer.concat(again.map((file) => uploadRequest(file.name, file.data))));
          for (const file of again) {
            const outcome = outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS));
            await expectConsistent(`round ${i}, ${file.name} again`, join(r.root, file.name), outcome, file.data);
            expect(outcome.ok).toBe(true);
          }
        });
      }
    },
    60_000,
  );

  /**
   * Resumable sizes (≥ 1 MiB) stage in a kept partial upload. The disk is filled right after the
   * server accepted the header (so the free-space check passed and the writes fail): the commit
   * fails with NO_SPACE and nothing is kept (it was no lost connection); once files are deleted,
   * the next upload on the same connection and server succeeds.
   */
  onTmpfs(
    'c. a resumable upload whose writes hit a full disk (4 rounds): NO_SPACE, nothing kept, and the next upload on the same connection succeeds',
    async () => {
      for (let i = 0; i < 4; i++) {
        await round(async (r) => {
          const data = randomBytes(3 * MiB + i * 4099);
          await fillTo(disk.dir, 4 * MiB);
          const client = await rawClient(r);
          const request = uploadRequest('big.bin', data);
          const header = request.indexOf('\n', request.indexOf('\n') + 1) + 1;
          await client.send(request.subarray(0, header));
          expect(await client.readLine(REPLY_TIMEOUT_MS)).toBe('OK file recv');
          await fillTo(disk.dir, MiB);
          await client.send(request.subarray(header));
          const outcome = outcomeOf(await client.readLine(REPLY_TIMEOUT_MS));
          await expectConsistent(`round ${i}, big.bin`, join(r.root, 'big.bin'), outcome, data);
          expect(outcome.ok).toBe(false);
          await expectNothingStaged(r.root, `round ${i}`);
          await expectNoHiddenData(`round ${i}`);
          // Nothing is offered for a resume: the failure was not a lost connection.
          await client.send('RESUME\nbig.bin\n');
          expect(await client.readLine(REPLY_TIMEOUT_MS)).toMatch(/^NOT FOUND/);

          // Deleting files frees the space: the same connection and server store it whole.
          await unfill(disk.dir);
          await client.send(request);
          const retry = outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS));
          await expectConsistent(`round ${i}, big.bin again`, join(r.root, 'big.bin'), retry, data);
          expect(retry.ok).toBe(true);
          await client.send(downloadRequest('big.bin'));
          expect(await client.readLine(REPLY_TIMEOUT_MS)).toBe(`OK ${data.length} ${sha256(data)}`);
          expect((await client.readBytes(data.length, REPLY_TIMEOUT_MS)).equals(data)).toBe(true);
          await expectNothingStaged(r.root, `round ${i}, after the retry`);
        });
      }
    },
    60_000,
  );

  /**
   * The same, but the connection is cut after the disk filled up and before the trailer: a cut
   * connection may keep a partial upload, but one that claims only what is on disk (RESUME answers
   * the bytes its file holds, and their true digest), and the upload completes (resumed or not)
   * once there is room.
   */
  onTmpfs(
    'c. cut mid-data after the disk filled (3 rounds): any kept partial claims only what is on disk, and the upload completes once there is room',
    async () => {
      for (let i = 0; i < 3; i++) {
        await round(async (r) => {
          const data = randomBytes(3 * MiB + i * 4099);
          const partialData = join(r.root, '.rxfer', 'partials', sha256(Buffer.from('big.bin')));
          await fillTo(disk.dir, 4 * MiB);
          const cut = await rawClient(r);
          const request = uploadRequest('big.bin', data);
          const header = request.indexOf('\n', request.indexOf('\n') + 1) + 1;
          await cut.send(request.subarray(0, header));
          expect(await cut.readLine(REPLY_TIMEOUT_MS)).toBe('OK file recv');
          await fillTo(disk.dir, MiB);
          // All the data but no trailer; then wait until the server met the full disk (the partial
          // dropped, or the disk full), and cut.
          await cut.send(request.subarray(header, header + data.length));
          const blockSize = 4096;
          await eventually(
            async () => !(await lstat(partialData).catch(() => undefined)) || freeBytes(disk.dir) < 2 * blockSize,
            REPLY_TIMEOUT_MS,
            'the server to meet the full disk',
          );
          cut.destroy();

          const client = await rawClient(r);
          let answer = '';
          await eventually(
            async () => {
              await client.send('RESUME\nbig.bin\n');
              answer = await client.readLine(REPLY_TIMEOUT_MS);
              return !answer.startsWith('ERR BUSY');
            },
            REPLY_TIMEOUT_MS,
            'the cut upload to be let go',
          );
          const kept = /^OK partial (\d+) ([0-9a-f]{64})$/.exec(answer);
          if (kept) {
            const bytes = Number(kept[1]);
            const onDisk = (await lstat(partialData)).size;
            expect({ round: i, claimed: bytes, digest: kept[2] }).toEqual({ round: i, claimed: onDisk, digest: sha256(data.subarray(0, onDisk)) });
            expect(bytes).toBeLessThanOrEqual(data.length);
          } else {
            expect(answer).toMatch(/^NOT FOUND/);
            await expectNothingStaged(r.root, `round ${i}, nothing kept`);
          }
          await expectNoHiddenData(`round ${i}`);

          // Room again: the library's upload (resuming if something is kept) stores it whole.
          await unfill(disk.dir);
          const source = join(r.server.scratch, 'big.bin');
          await writeFile(source, data);
          const library = await libraryClient(r);
          const outcome = await settle(library.upload(source, 'big.bin'));
          await expectConsistent(`round ${i}, big.bin after the cut`, join(r.root, 'big.bin'), outcome, data);
          expect(outcome.ok).toBe(true);
          await expectNothingStaged(r.root, `round ${i}, after the upload`);
        });
      }
    },
    60_000,
  );

  /**
   * Several uploads written in one go on one connection, big and small mixed, into 6 MiB free. The
   * first is declared at exactly the free space: it passes the check at its header, but the
   * server's own bookkeeping (the partial upload's manifest) takes a page, so its *last* write
   * fails, the one whose error end() reports and the old commit ignored. What follows is refused
   * at its header, fails mid-data or at commit, or is stored; each is told which, and the
   * connection goes on.
   */
  onTmpfs(
    'd. pipelined uploads on one connection, some not fitting (6 rounds): each OK is exact, each failure NO_SPACE and absent, the connection goes on',
    async () => {
      for (let i = 0; i < 6; i++) {
        await round(async (r) => {
          await fillTo(disk.dir, 6 * MiB);
          const free = freeBytes(disk.dir);
          const sizes = [free, 2 * MiB + i, 40 * KiB, 2 * MiB + 1, 300 * KiB, 2 * MiB + 7, 60 * KiB, 2 * MiB - 5, 50 * KiB];
          const files = sizes.map((size, k) => ({ name: `p/${k}.bin`, data: randomBytes(size) }));
          const client = await rawClient(r);
          await client.send(Buffer.concat(files.map((file) => uploadRequest(file.name, file.data))));
          const outcomes: Outcome[] = [];
          for (const _ of files) outcomes.push(outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS)));
          for (const [k, file] of files.entries()) await expectConsistent(`round ${i}, ${file.name}`, join(r.root, file.name), outcomes[k]!, file.data);
          const stored = files.filter((_, k) => outcomes[k]!.ok);
          expect(stored.reduce((sum, file) => sum + file.data.length, 0)).toBeLessThanOrEqual(free);
          expect(stored.length).toBeLessThan(files.length);
          await expectNothingStaged(r.root, `round ${i}`);
          await expectNoHiddenData(`round ${i}`);

          // The connection is in step: a STAT answers, and once there is room the refused go through.
          await client.send('STAT\np/2.bin\n');
          expect(await client.readLine(REPLY_TIMEOUT_MS)).toMatch(outcomes[2]!.ok ? new RegExp(`^OK stat file ${40 * KiB} `) : /^NOT FOUND/);
          await unfill(disk.dir);
          const again = files.filter((_, k) => !outcomes[k]!.ok);
          await client.send(Buffer.concat(again.map((file) => uploadRequest(file.name, file.data))));
          for (const file of again) {
            const outcome = outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS));
            await expectConsistent(`round ${i}, ${file.name} again`, join(r.root, file.name), outcome, file.data);
            expect(outcome.ok).toBe(true);
          }
        });
      }
    },
    90_000,
  );

  /**
   * A size over the free space is refused at the header, before any data is sent: the reply
   * follows the header alone. Nothing is staged; the owed data is read and dropped and the
   * connection goes on. One round each for UPLOAD, ADDFILE and the library's upload.
   */
  onTmpfs(
    'e. a declared size over the free space (3 rounds): ERR NO_SPACE right after the header, nothing staged, the connection goes on',
    async () => {
      for (const verb of ['UPLOAD', 'ADDFILE'] as const) {
        await round(async (r) => {
          await fillTo(disk.dir, MiB);
          const used = usedBytes(disk.dir);
          const data = randomBytes(4 * MiB);
          const request = uploadRequest('too-big.bin', data, { verb });
          const header = request.indexOf('\n', request.indexOf('\n') + 1) + 1;
          const client = await rawClient(r);
          await client.send(request.subarray(0, header));
          const reply = await client.readLine(REPLY_TIMEOUT_MS);
          expect({ verb, reply: outcomeOf(reply) }).toMatchObject({ verb, reply: { ok: false, code: 'NO_SPACE' } });
          await expectNothingStaged(r.root, verb);
          expect(await storedAs(join(r.root, 'too-big.bin'), data)).toBe('absent');
          expect(usedBytes(disk.dir)).toBeLessThanOrEqual(used + HIDDEN_SLACK_BYTES);
          // The data is still owed (PROTOCOL.md); the server drops it and answers what follows.
          await client.send(request.subarray(header));
          await client.send(uploadRequest('fits.txt', 'it fits\n'));
          expect(outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS))).toEqual({ ok: true, size: 8, digest: sha256(Buffer.from('it fits\n')) });
          await expectNothingStaged(r.root, `${verb}, after`);
          expect(await readdir(r.root)).not.toContain('too-big.bin');
        });
      }
      await round(async (r) => {
        await fillTo(disk.dir, MiB);
        const data = randomBytes(4 * MiB);
        const source = join(r.server.scratch, 'too-big.bin');
        await writeFile(source, data);
        const client = await libraryClient(r);
        const outcome = await settle(client.upload(source, 'too-big.bin'));
        await expectConsistent('library upload', join(r.root, 'too-big.bin'), outcome, data);
        expect(outcome.ok).toBe(false);
        await expectNothingStaged(r.root, 'library upload');
      });
    },
    60_000,
  );

  /**
   * The client's own disk, a tmpfs (the server stores on the ordinary disk). Race rounds: 10 MiB
   * free, downloads of 9 MiB and 1.5 MiB at once on two connections (each passes the client's
   * free-space check; only one fits, and the small one usually ends before the big one overflows:
   * over the rounds, at least one download must succeed). Exact-fit rounds: one download of exactly the free space, which passes
   * the check, but the resume file's lock takes a page, so the download's *last* write fails (the
   * one whose error only end()'s callback reports). A download that does not fit rejects with
   * LOCAL_IO and leaves nothing under its name, nor any staging, resume or lock file; one that
   * succeeds is exact. The CLI's `rxfer get` is tested the same way in issue-14-disk-full-cli.test.ts.
   */
  describe('f. downloads into a local disk without room for them', () => {
    let server: TestServer | undefined;
    const clients: RxferClient[] = [];
    const sources = [randomBytes(9 * MiB), randomBytes(1.5 * MiB + 3)];
    const target = () => join(disk.dir, 'downloads');
    const connect = async () => {
      const client = await RxferClient.connect({ host: server!.host, port: server!.port });
      clients.push(client);
      return client;
    };
    const upload = async (name: string, data: Buffer) => {
      await writeFile(join(server!.scratch, name), data);
      await (await connect()).upload(join(server!.scratch, name), name);
    };
    beforeEach(async () => {
      if (!disk.canMount) return;
      server = await startTestServer();
      for (const [k, data] of sources.entries()) await upload(`d${k + 1}.bin`, data);
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) client.close();
      await server?.close();
      server = undefined;
      if (disk.canMount) await emptyTmpfs(disk.dir);
    });

    /** Only the downloads that succeeded are in the folder: no staging file, resume file or lock. */
    const expectOnlySucceeded = async (context: string, names: string[], outcomes: Outcome[]) => {
      const expected = outcomes.flatMap((outcome, k) => (outcome.ok ? [names[k]!] : []));
      expect({ context, left: (await readdir(target())).sort() }).toEqual({ context, left: expected });
    };

    onTmpfs(
      'two library downloads at once with room for one (4 rounds): LOCAL_IO and no file, or the exact bytes',
      async () => {
        let succeeded = 0;
        for (let i = 0; i < 4; i++) {
          await emptyTmpfs(disk.dir);
          await mkdir(target());
          await fillTo(disk.dir, 10 * MiB);
          const pair = [await connect(), await connect()];
          const names = ['d1.bin', 'd2.bin'];
          const outcomes = await Promise.all(pair.map((client, k) => settle(client.download(names[k]!, join(target(), names[k]!)))));
          for (const [k, outcome] of outcomes.entries()) {
            await expectConsistent(`round ${i}, ${names[k]}`, join(target(), names[k]!), outcome, sources[k]!, { failureCode: 'LOCAL_IO' });
          }
          succeeded += outcomes.filter((outcome) => outcome.ok).length;
          expect(outcomes.filter((outcome) => outcome.ok).length).toBeLessThanOrEqual(1);
          await expectOnlySucceeded(`round ${i}`, names, outcomes);
          await expectNoHiddenData(`round ${i}`);
        }
        expect(succeeded).toBeGreaterThanOrEqual(1);
      },
      60_000,
    );

    onTmpfs(
      'a library download of exactly the free space, whose last write fails (2 rounds): LOCAL_IO and no file, and the connection goes on',
      async () => {
        for (let i = 0; i < 2; i++) {
          await emptyTmpfs(disk.dir);
          await mkdir(target());
          await fillTo(disk.dir, 6 * MiB + i * 64 * KiB);
          const data = randomBytes(freeBytes(disk.dir));
          const name = `exact-${i}.bin`;
          await upload(name, data);
          const client = await connect();
          const outcome = await settle(client.download(name, join(target(), name)));
          await expectConsistent(`round ${i}, ${name}`, join(target(), name), outcome, data, { failureCode: 'LOCAL_IO' });
          await expectOnlySucceeded(`round ${i}`, [name], [outcome]);
          await expectNoHiddenData(`round ${i}`);
          // Room again: a download on a new connection (a failed body cuts the old one) succeeds.
          await unfill(disk.dir);
          const retry = await settle((await connect()).download(name, join(target(), name)));
          await expectConsistent(`round ${i}, ${name} again`, join(target(), name), retry, data, { failureCode: 'LOCAL_IO' });
          expect(retry.ok).toBe(true);
        }
      },
      60_000,
    );
  });

  /**
   * A replace that does not fit fails and leaves the previous version whole, on each staging path:
   * a kept partial (≥ 1 MiB), a plain staging file (64 KiB–1 MiB) and the small-file worker
   * (≤ 64 KiB). The disk is filled after the header was accepted, so the failure is in the writes
   * (or, for the worker, at commit). Two rounds each.
   */
  describe.each([
    { path: 'a kept partial', v1Size: 2 * MiB, v2Size: 3 * MiB, leave: MiB },
    { path: 'a plain staging file', v1Size: 200 * KiB, v2Size: 700 * KiB, leave: 128 * KiB },
    { path: 'the small-file worker', v1Size: 20 * KiB, v2Size: 60 * KiB, leave: 0 },
  ])('g. a replace that does not fit, staged in $path', ({ path, v1Size, v2Size, leave }) => {
    onTmpfs(
      'ERR NO_SPACE, and the previous version is still downloaded byte-exact (2 rounds)',
      async () => {
        for (let i = 0; i < 2; i++) {
          await round(async (r) => {
            const context = `${path}, round ${i}`;
            const v1 = randomBytes(v1Size + i);
            const v2 = randomBytes(v2Size + i);
            const client = await rawClient(r);
            await client.send(uploadRequest('doc.bin', v1));
            expect(outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS))).toEqual({ ok: true, size: v1.length, digest: sha256(v1) });

            await fillTo(disk.dir, 8 * MiB);
            const request = uploadRequest('doc.bin', v2);
            const header = request.indexOf('\n', request.indexOf('\n') + 1) + 1;
            await client.send(request.subarray(0, header));
            expect(await client.readLine(REPLY_TIMEOUT_MS)).toBe('OK file recv');
            await fillTo(disk.dir, leave);
            await client.send(request.subarray(header));
            const outcome = outcomeOf(await client.readLine(REPLY_TIMEOUT_MS));
            await expectConsistent(context, join(r.root, 'doc.bin'), outcome, v2, { previous: v1 });
            expect(outcome.ok).toBe(false);
            await expectNothingStaged(r.root, context);
            await expectNoHiddenData(context);

            // v1, whole, from the same connection (and its digest as STAT knows it).
            await client.send(downloadRequest('doc.bin'));
            expect(await client.readLine(REPLY_TIMEOUT_MS)).toBe(`OK ${v1.length} ${sha256(v1)}`);
            expect((await client.readBytes(v1.length, REPLY_TIMEOUT_MS)).equals(v1)).toBe(true);
            await client.send('STAT\ndoc.bin\n');
            expect(await client.readLine(REPLY_TIMEOUT_MS)).toMatch(new RegExp(`^OK stat file ${v1.length} (${sha256(v1)}|-) `));
          });
        }
      },
      30_000,
    );
  });

  /**
   * A write cut short by the full disk, with room again before the rest of it is written: what
   * happens when another transfer's staging file is deleted at that moment (the server now deletes a
   * failed upload's staging data at once). The disk is filled (to 2 MiB free) just before the first
   * write of the staging file and the filler deleted the moment a write comes back short; the short
   * write and its ENOSPC are the kernel's. Node 20's fs.WriteStream writes the rest of a short
   * writev at the position after the whole batch (writevAll retries at `this.pos`), leaving a hole of
   * zeros where the rest belonged: the file has the right size and the wrong bytes, and the digest,
   * taken from the socket, matches. Either the exact bytes are stored or the upload fails.
   */
  onTmpfs(
    'h. upload: a write cut short by a full disk, then room again (3 rounds): the exact bytes, or NO_SPACE and nothing',
    async () => {
      for (let i = 0; i < 3; i++) {
        await round(async (r) => {
          const data = randomBytes(6 * MiB + i * 4099);
          let filler = '';
          const hooks = hookWrites({
            under: join(r.root, '.rxfer', 'partials'),
            beforeFirst: () => (filler = fillToSync(disk.dir, 2 * MiB + 12_345)),
            afterShort: () => unlinkSync(filler),
            // A disk a little slower than the network, so that the writes are batched (writev).
            delayMs: 5,
          });
          let outcome: Outcome;
          try {
            const client = await rawClient(r);
            await client.send(uploadRequest('big.bin', data));
            outcome = outcomeOf(await client.readUploadOutcome(REPLY_TIMEOUT_MS));
          } finally {
            hooks.restore();
          }
          if (!hooks.shortWrite) console.warn(`h. upload, round ${i}: no write came back short (the disk did not fill mid-write); this round tested only the plain path`);
          await expectConsistent(`round ${i}, big.bin (short write: ${hooks.shortWrite ?? 'none'})`, join(r.root, 'big.bin'), outcome, data);
          await expectNothingStaged(r.root, `round ${i}`);
          await expectNoHiddenData(`round ${i}`);
        });
      }
    },
    60_000,
  );

  onTmpfs(
    'h. download: a write cut short by a full local disk, then room again (3 rounds): the exact bytes, or LOCAL_IO and nothing',
    async () => {
      const server = await startTestServer();
      const clients: RxferClient[] = [];
      try {
        const data = randomBytes(6 * MiB + 77);
        await writeFile(join(server.scratch, 'big.bin'), data);
        const uploader = await RxferClient.connect({ host: server.host, port: server.port });
        clients.push(uploader);
        await uploader.upload(join(server.scratch, 'big.bin'), 'big.bin');
        for (let i = 0; i < 3; i++) {
          await emptyTmpfs(disk.dir);
          const target = join(disk.dir, 'downloads');
          await mkdir(target);
          let filler = '';
          const hooks = hookWrites({
            under: target,
            beforeFirst: () => (filler = fillToSync(disk.dir, 2 * MiB + 12_345)),
            afterShort: () => unlinkSync(filler),
            // A disk a little slower than the network, so that the writes are batched (writev).
            delayMs: 5,
          });
          let outcome: Outcome;
          try {
            const client = await RxferClient.connect({ host: server.host, port: server.port });
            clients.push(client);
            outcome = await settle(client.download('big.bin', join(target, 'big.bin')));
          } finally {
            hooks.restore();
          }
          if (!hooks.shortWrite) console.warn(`h. download, round ${i}: no write came back short; this round tested only the plain path`);
          await expectConsistent(`round ${i}, big.bin (short write: ${hooks.shortWrite ?? 'none'})`, join(target, 'big.bin'), outcome, data, { failureCode: 'LOCAL_IO' });
          const left = (await readdir(target)).sort();
          expect({ round: i, left }).toEqual({ round: i, left: outcome.ok ? ['big.bin'] : [] });
          await expectNoHiddenData(`round ${i}`);
        }
      } finally {
        for (const client of clients) client.close();
        await server.close();
        await emptyTmpfs(disk.dir);
      }
    },
    60_000,
  );
});

/** The tmpfs helper itself: what the tests above stand on. */
describe('test/helpers/tmpfs', () => {
  onTmpfs(
    'fillTo leaves exactly what was asked (to the block), unfill gives it back',
    async () => {
      await emptyTmpfs(disk.dir);
      const before = freeBytes(disk.dir);
      await fillTo(disk.dir, 5 * MiB);
      expect(freeBytes(disk.dir)).toBe(5 * MiB);
      await fillTo(disk.dir, 0);
      expect(freeBytes(disk.dir)).toBe(0);
      await expect(writeFile(join(disk.dir, 'more'), Buffer.alloc(8192))).rejects.toMatchObject({ code: 'ENOSPC' });
      await rm(join(disk.dir, 'more'), { force: true });
      expect((await readdir(disk.dir)).filter((entry) => entry.startsWith(FILLER_PREFIX))).toHaveLength(2);
      await unfill(disk.dir);
      expect(freeBytes(disk.dir)).toBe(before);
    },
    30_000,
  );
});
