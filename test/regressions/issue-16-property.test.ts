import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { TOKENS } from '../../src/container/tokens';
import { SecureServer, TestUser, makeUser, startSecureServer, stagingFiles } from '../security/support/server';
import { Wire, destroyAll, eventually, sha256, sleep } from '../security/support/wire';

/**
 * Issue 16, the property: whatever a client pipelines (every verb, good and bad: uploads small and
 * resumable, with right and wrong digests, resumes that match and that do not, downloads, LIST,
 * STAT, DELETE, RENAME, MKDIR, RESUME, HASH, QUIT, garbage) and wherever the connection is cut (a
 * reset, a half-close, a peer that stops reading), once it is gone the server holds nothing for it:
 * the user's one transfer slot is free, the process's descriptors are back at the baseline, the
 * quota ledger agrees with the disk, and no staging file is left (kept partial uploads, which are
 * meant to stay, each have their manifest).
 */

const MiB = 1024 * 1024;
/** 30 in `npm test`; a soak runs more: `RXFER_PROPERTY_RUNS=300 npx jest test/regressions/issue-16-property.test.ts`. */
const RUNS = Number(process.env.RXFER_PROPERTY_RUNS ?? 30);
const QUOTA = 64 * MiB;
/** Every resumable upload sends (a prefix of) these bytes, so that some resumes match what was kept. */
const BIG = randomBytes(1.5 * MiB);
const NAMES = ['a', 'b', 'dir/c', 'dir/d', 'big'] as const;

const openFds = (): number => readdirSync('/proc/self/fd').length;

const upload = (verb: 'UPLOAD' | 'ADDFILE', name: string, data: Buffer, goodDigest: boolean, from?: number): Buffer => {
  const header = from === undefined ? `${verb} ${data.length}` : `${verb} ${data.length} FROM ${from} ${goodDigest ? sha256(data.subarray(0, from)) : '0'.repeat(64)}`;
  const sent = from === undefined ? data : data.subarray(from);
  return Buffer.concat([Buffer.from(`${header}\n${name}\n`), sent, Buffer.from(`SHA256 ${goodDigest || from !== undefined ? sha256(data) : '1'.repeat(64)}\n`)]);
};

const name = fc.constantFrom(...NAMES);
/** `huge` (8 MiB, never uploaded to) is there to be downloaded: its data outlasts the socket's buffers. */
const downloadable = fc.constantFrom(...NAMES, 'huge', 'huge');
const request: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(fc.constantFrom('UPLOAD', 'ADDFILE') as fc.Arbitrary<'UPLOAD' | 'ADDFILE'>, name, fc.integer({ min: 0, max: 5000 }), fc.boolean()).map(([verb, n, size, good]) => upload(verb, n, randomBytes(size), good)),
  { weight: 2, arbitrary: fc.boolean().map((good) => upload('UPLOAD', 'big', BIG, good)) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: BIG.length }), fc.boolean()).map(([from, good]) => upload('UPLOAD', 'big', BIG, good, from)) },
  { weight: 2, arbitrary: fc.tuple(downloadable, fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined })).map(([n, from]) => Buffer.from(from === undefined ? `DOWNLOAD\n${n}\n` : `DOWNLOAD FROM ${from} ${'0'.repeat(64)}\n${n}\n`)) },
  fc.constantFrom('', 'dir').map((folder) => Buffer.from(`LIST\n${folder}\n`)),
  fc.tuple(fc.constantFrom('STAT', 'DELETE', 'MKDIR', 'RESUME'), name).map(([verb, n]) => Buffer.from(`${verb}\n${n}\n`)),
  fc.tuple(name, name).map(([from, to]) => Buffer.from(`RENAME\n${from}\n${to}\n`)),
  fc.constantFrom('HASH BLAKE3\n', 'HASH SHA256\n', 'QUIT\n', 'BOGUS\n').map((line) => Buffer.from(line)),
);

/** How the client leaves: a reset at once, a reset after reading a little, a peer that stopped reading, or a half-close and read to the end. */
const leaving = fc.constantFrom('reset', 'read-then-reset', 'stop-reading', 'half-close');

describe('issue 16 (property): a cut connection leaves nothing behind', () => {
  let server: SecureServer;
  let user: TestUser;
  let baselineFds: number;
  const wires: Wire[] = [];
  const open = async () => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toBe('OK auth p write');
    return wire;
  };

  beforeAll(async () => {
    user = await makeUser('p', 'write', 'p', QUOTA);
    server = await startSecureServer({ server: { maxConnectionsPerIp: 200 }, limits: { maxTransfersPerUser: 1 }, auth: { users: [user.entry] } });
    await mkdir(join(server.root, 'p', 'dir'), { recursive: true });
    await writeFile(join(server.root, 'p', 'a'), randomBytes(3000));
    await writeFile(join(server.root, 'p', 'dir', 'c'), randomBytes(200_000));
    await writeFile(join(server.root, 'p', 'huge'), randomBytes(8 * MiB));
    // Warm up what lives as long as the server (the small-commit worker), then measure.
    const wire = await open();
    expect(await wire.upload('warm', 'up')).toEqual(['OK file recv', `OK file data recv 2 ${sha256('up')}`]);
    wire.destroy();
    await wire.closed;
    await sleep(100);
    baselineFds = openFds();
  });
  afterEach(() => destroyAll(wires));
  afterAll(() => server.close());

  /** The header of an upload of `size` bytes (its data is never sent). */
  const headerReply = async (size: number): Promise<string> => {
    const wire = await open();
    await wire.send(`UPLOAD ${size}\nprobe\n`);
    const reply = await wire.line();
    wire.destroy();
    await wire.closed;
    return reply;
  };

  const nothingHeld = async () => {
    // The transfer slot: the user's next transfer is not BUSY.
    await eventually(async () => {
      const wire = await open();
      const { reply } = await wire.download('a');
      wire.destroy();
      await wire.closed;
      return !reply.startsWith('ERR BUSY');
    }, 'the transfer slot to be free');
    // Descriptors: only what the server had before (a cut send may take a moment to be noticed).
    await eventually(() => openFds() <= baselineFds, `descriptors back to ${baselineFds} (now ${openFds()})`);
    // Staging files: none; kept partial uploads only with their manifests.
    await eventually(async () => (await stagingFiles(server.root)).every((path) => path.startsWith('.rxfer/partials/')), 'no staging file left');
    const partials = join(server.root, '.rxfer', 'partials');
    const entries = await readdir(partials);
    for (const entry of entries.filter((e) => !e.endsWith('.json'))) expect(entries).toContain(`${entry}.json`);
    // The quota ledger agrees with the disk: exactly the room left fits.
    // Measured again on each try: a cut upload kept for a resume may still be flushing its last
    // bytes when the staging check passes, and a stale measure would wait for room that is not there.
    let used = 0;
    let lastReply = '';
    await eventually(async () => {
      used = await server.running.container.get(TOKENS.Storage).usage('p');
      lastReply = await headerReply(QUOTA - used);
      return lastReply === 'OK file recv';
    }, 'the bytes left on disk to fit').catch(async (err: Error) => {
      // The refusal says what the ledger counts ("uses N of 67108864 bytes"): with the disk's count, what drifted,
      // and the kept partial uploads as they are on disk (usage() leaves out one it takes for being written).
      const kept = await Promise.all(
        (await readdir(partials)).filter((e) => !e.endsWith('.json')).map(async (e) => `${e.slice(0, 8)}… ${(await stat(join(partials, e))).size} bytes`),
      );
      throw new Error(`${err.message}; the disk holds ${used} bytes for p, the last probe heard: ${lastReply}; kept partial data files: ${kept.join(', ') || 'none'}`);
    });
    expect(await headerReply(QUOTA - used + 1)).toMatch(/^ERR QUOTA_EXCEEDED /);
  };

  test('random pipelined batches of every verb, cut at random points', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 24 }), fc.double({ min: 0, max: 1, noNaN: true }), leaving, async (requests, cutAt, how) => {
        const batch = Buffer.concat(requests);
        const wire = await open();
        if (how === 'stop-reading') wire.socket.pause();
        await wire.send(batch.subarray(0, Math.floor(batch.length * cutAt))).catch(() => undefined);
        if (how === 'read-then-reset') await sleep(30);
        if (how === 'half-close') {
          wire.socket.end();
          await wire.serverClosed(15_000).catch(() => undefined);
        }
        if (how === 'stop-reading') await sleep(50);
        // A reset is a real RST: the session ends at once, with commits and storage calls still running
        // (a plain destroy sends a FIN, after which the server finishes what it has and replies first).
        if (how === 'reset' || how === 'read-then-reset') wire.socket.resetAndDestroy();
        wire.destroy();
        await wire.closed;
        await nothingHeld();
      }),
      { numRuns: RUNS },
    );
  }, 110_000 * Math.max(1, RUNS / 30));
});
