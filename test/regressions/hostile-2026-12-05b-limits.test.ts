import { randomBytes } from 'node:crypto';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, startSecureServer, stagingFiles } from '../security/support/server';
import { manyFiles, quotaProbes } from './support/quota-probes';
import { Wire, destroyAll, eventually, sha256, uploadBytes } from '../security/support/wire';

/**
 * Hostile attack (2026-12-05b): quotas and limits under concurrency, from outside, over real sockets.
 * After everything settles the user's bytes on disk never exceed the quota, and the ledger agrees with
 * the disk: an upload of exactly the room left is accepted, one byte more is refused.
 */

jest.setTimeout(90_000);

const MiB = 1024 * 1024;

describe('hostile 2026-12-05b: quotas and limits under concurrency', () => {
  let server: SecureServer | undefined;
  const wires: Wire[] = [];

  afterEach(async () => {
    destroyAll(wires);
    await server?.close();
    server = undefined;
  });

  const { open, storage, expectLedgerMatchesDisk, sweepNow } = quotaProbes(() => server!, wires);

  /** Uploads `data` as `name` on its own connection: the replies (one if refused, two otherwise), or 'cut'. */
  const uploadOn = async (user: TestUser, name: string, data: Buffer, verb: 'UPLOAD' | 'ADDFILE' = 'UPLOAD'): Promise<string[]> => {
    const wire = await open(user);
    try {
      return await wire.upload(name, data, verb);
    } finally {
      wire.destroy();
    }
  };

  test('a burst of uploads by one user (new names, one name replaced, ADDFILE, small and big, cuts, wrong digests) never stores more than the quota', async () => {
    const quota = 3_000_000;
    const user = await makeUser('b', 'write', 'b', quota);
    const other = await makeUser('o', 'write', 'o', quota);
    server = await startSecureServer({ server: { maxConnectionsPerIp: 200 }, limits: { maxTransfersPerUser: 200 }, auth: { users: [user.entry, other.entry] } });
    // The replaced names exist from the start, at the size of their replacements.
    expect((await uploadOn(user, 'same.bin', randomBytes(700_000)))[1]).toMatch(/^OK file data recv /);
    expect((await uploadOn(user, 'add.bin', randomBytes(500_000)))[1]).toMatch(/^OK file data recv /);
    for (let round = 0; round < 3; round++) {
      const jobs: Promise<unknown>[] = [];
      for (let i = 0; i < 6; i++) jobs.push(uploadOn(user, `new-${round}-${i}.bin`, randomBytes(300_000 + i)));
      // Replacements of one name all of one size: mixed sizes hit the bug of the 'replacing one name' test.
      for (let i = 0; i < 6; i++) jobs.push(uploadOn(user, 'same.bin', randomBytes(700_000)));
      for (let i = 0; i < 3; i++) jobs.push(uploadOn(user, 'add.bin', randomBytes(500_000), 'ADDFILE'));
      for (let i = 0; i < 3; i++) jobs.push(uploadOn(user, 'add.bin', randomBytes(500_000)));
      // The other user's uploads run alongside and count only for the other user.
      for (let i = 0; i < 4; i++) jobs.push(uploadOn(other, `o-${i}.bin`, randomBytes(700_000)));
      // Wrong digests, and cuts at random points of big and small uploads.
      for (let i = 0; i < 3; i++) {
        jobs.push(
          (async () => {
            const wire = await open(user);
            const data = randomBytes(1_100_000);
            await wire.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nbad-${i}.bin\n`), data, Buffer.from(`SHA256 ${'0'.repeat(64)}\n`)]));
            // A second reply only follows `OK file recv` (refused for the quota, the header gets one).
            if ((await wire.line().catch(() => undefined)) === 'OK file recv') await wire.line().catch(() => undefined);
            wire.destroy();
          })(),
        );
        jobs.push(
          (async () => {
            const wire = await open(user);
            const whole = uploadBytes(i % 2 ? 'cut-small.bin' : 'cut-big.bin', randomBytes(i % 2 ? 60_000 : 2 * MiB));
            await wire.send(whole.subarray(0, Math.floor(Math.random() * whole.length)));
            wire.destroy();
          })(),
        );
      }
      await Promise.allSettled(jobs);
      destroyAll(wires);
      await eventually(async () => server!.connections() === 0, 'every connection to be gone');
      expect(await storage().usage('b')).toBeLessThanOrEqual(quota);
      expect(await storage().usage('o')).toBeLessThanOrEqual(quota);
    }
    await expectLedgerMatchesDisk(user);
    await expectLedgerMatchesDisk(other);
  });

  // Bug A: an upload that replaces a file is admitted for its growth only; the file renamed away before the commit, it
  // stored its whole size past the quota. Now the commit asks the ledger again, under the name's lock, with the size
  // it really replaces (WriteOptions.admitReplaced).
  test('a file renamed away while an upload replacing it is in flight: the upload does not store more than the quota', async () => {
    // The upload was admitted for its growth only (the file it replaces counted as freed); the RENAME
    // takes that file out of the way, so nothing is replaced and both stay on disk.
    const quota = 1_000_000;
    const user = await makeUser('n', 'write', 'n', quota);
    server = await startSecureServer({ auth: { users: [user.entry] } });
    const old = randomBytes(600_000);
    expect(await uploadOn(user, 'a.bin', old)).toEqual(['OK file recv', `OK file data recv ${old.length} ${sha256(old)}`]);
    const fresh = randomBytes(600_000);
    const uploader = await open(user);
    await uploader.send(`UPLOAD ${fresh.length}\na.bin\n`);
    expect(await uploader.line()).toBe('OK file recv');
    const renamer = await open(user);
    await renamer.send('RENAME\na.bin\nmoved.bin\n');
    const renamed = await renamer.line();
    await uploader.send(Buffer.concat([fresh, Buffer.from(`SHA256 ${sha256(fresh)}\n`)]));
    const stored = await uploader.line();
    const used = await storage().usage('n');
    // Either the RENAME waits for (or is refused during) the upload, or the upload is refused at the end:
    // 1,200,000 bytes on disk under a 1,000,000-byte quota is never an outcome.
    expect({ renamed, stored, used: used <= quota ? 'within quota' : used }).toEqual({ renamed: expect.any(String), stored: expect.any(String), used: 'within quota' });
    // What rxfer does: the RENAME is done, and the upload, which now replaces nothing, is refused at its commit.
    expect(renamed).toMatch(/^OK /);
    expect(stored).toBe(`ERR QUOTA_EXCEEDED n would use 1200000 of ${quota} bytes: the 600000-byte file this upload was to replace is no longer there (renamed or deleted meanwhile); nothing stored`);
    expect(used).toBe(old.length);
    uploader.destroy();
    renamer.destroy();
    await expectLedgerMatchesDisk(user);
  });

  test('two uploads replacing one name commit together: the ledger subtracts what each really replaced', async () => {
    // A big upload measures the file it replaces before its rename (outside the name lock); a small
    // upload of the name that commits in between replaces that file first. The big one then replaces
    // the small file but reports the old size: the ledger subtracts the old file twice.
    const quota = 60_000_000;
    const user = await makeUser('s', 'write', 's', quota);
    server = await startSecureServer({ auth: { users: [user.entry] } });
    for (let round = 0; round < 12; round++) {
      const name = `r-${round}.bin`;
      const old = randomBytes(1_000_000);
      expect(await uploadOn(user, name, old)).toEqual(['OK file recv', `OK file data recv ${old.length} ${sha256(old)}`]);
      const big = randomBytes(1_000_000);
      const small = randomBytes(1000);
      const [bigWire, smallWire] = [await open(user), await open(user)];
      await bigWire.send(Buffer.concat([Buffer.from(`UPLOAD ${big.length}\n${name}\n`), big]));
      expect(await bigWire.line()).toBe('OK file recv');
      // The big upload's trailer and the whole small upload at once.
      await Promise.all([bigWire.send(`SHA256 ${sha256(big)}\n`), smallWire.send(uploadBytes(name, small))]);
      expect(await bigWire.line()).toMatch(/^OK file data recv /);
      expect(await smallWire.line()).toBe('OK file recv');
      expect(await smallWire.line()).toMatch(/^OK file data recv /);
      bigWire.destroy();
      smallWire.destroy();
    }
    await expectLedgerMatchesDisk(user);
  });

  test('a DELETE during the first measurement of the usage is not subtracted twice', async () => {
    // The measurement walks many files; a DELETE that finishes while it walks is either seen by the
    // walk or not, and the ledger then subtracts the deleted file's size from the walk's total too.
    const quota = 10_000_000;
    const users = await Promise.all([0, 1, 2].map((i) => makeUser(`d${i}`, 'write', `d${i}`, quota)));
    server = await startSecureServer({ auth: { users: users.map((u) => u.entry) } });
    for (const user of users) {
      const folder = join(server.root, user.entry.root, 'x');
      await manyFiles(folder);
      await writeFile(join(folder, 'big.bin'), randomBytes(4_000_000));
    }
    for (const user of users) {
      const [measure, remover] = [await open(user), await open(user)];
      // Both at once: the upload header starts the measurement, the DELETE removes the big file.
      await Promise.all([measure.send('UPLOAD 1\nm.bin\n'), remover.send('DELETE\nx/big.bin\n')]);
      expect(await remover.line()).toBe('OK deleted');
      expect(await measure.line()).toBe('OK file recv');
      measure.destroy();
      await measure.closed;
      // 3000 bytes on disk: 9,997,000 left; a ledger that subtracted 4 MB twice accepts 13,997,000.
      await expectLedgerMatchesDisk(user);
    }
  });

  test('an upload in flight keeps its whole reservation when expired partial uploads make the ledger measure again', async () => {
    const quota = 10_000_000;
    const user = await makeUser('r', 'write', 'r', quota);
    // The timer sweeps every partialExpiryMs / 4 = 15 s; step 3 sweeps at once instead (sweepNow).
    server = await startSecureServer({ partialExpiryMs: 60_000, limits: { stallTimeoutMs: 120_000 }, auth: { users: [user.entry] } });

    // 1. A kept partial upload (1 MiB of 2 MiB), released.
    const kept = randomBytes(2 * MiB);
    const first = await open(user);
    await first.send(Buffer.concat([Buffer.from(`UPLOAD ${kept.length}\nold.bin\n`), kept.subarray(0, MiB)]));
    expect(await first.line()).toBe('OK file recv');
    await eventually(async () => {
      const [partial] = await stagingFiles(server!.root);
      return partial !== undefined && (await stat(join(server!.root, partial))).size === MiB;
    }, 'the sent bytes to reach the kept upload');
    first.destroy();
    await first.closed;
    const probe = await open(user);
    await eventually(async () => {
      await probe.send('RESUME\nold.bin\n');
      return (await probe.line()).startsWith(`OK partial ${MiB} `);
    }, 'the kept upload to be released');
    const [oldData] = await stagingFiles(server.root);
    expect(oldData).toMatch(/^\.rxfer\/partials\/[0-9a-f]{64}$/);

    // 2. An upload of 8,000,000 bytes in flight: 100,000 sent, the rest to come.
    const big = randomBytes(8_000_000);
    const inflight = await open(user);
    await inflight.send(Buffer.concat([Buffer.from(`UPLOAD ${big.length}\ninflight.bin\n`), big.subarray(0, 100_000)]));
    expect(await inflight.line()).toBe('OK file recv');

    // 3. The kept partial ages past partialExpiryMs: the sweep deletes it and the ledger measures again.
    const old = (Date.now() - 10 * 60_000) / 1000;
    for (const path of [oldData!, `${oldData!}.json`]) await utimes(join(server.root, path), old, old);
    await sweepNow();
    await eventually(async () => {
      await probe.send('RESUME\nold.bin\n');
      return (await probe.line()).startsWith('NOT FOUND');
    }, 'the sweep to expire the kept upload', 40_000);

    // 4. 8,000,000 are promised to the upload in flight: 5,000,000 more do not fit in 10,000,000.
    const other = await open(user);
    await other.send(`UPLOAD 5000000\nsecond.bin\n`);
    const reply = await other.line();
    if (reply === 'OK file recv') {
      // Accepted: both uploads complete, and the disk then holds more than the quota.
      const second = randomBytes(5_000_000);
      await other.send(Buffer.concat([second, Buffer.from(`SHA256 ${sha256(second)}\n`)]));
      expect(await other.line()).toMatch(/^OK file data recv /);
    }
    await inflight.send(Buffer.concat([big.subarray(100_000), Buffer.from(`SHA256 ${sha256(big)}\n`)]));
    expect(await inflight.line()).toBe(`OK file data recv ${big.length} ${sha256(big)}`);
    expect({ reply, used: await storage().usage('r') }).toEqual({ reply: expect.stringMatching(/^ERR QUOTA_EXCEEDED /), used: big.length });
    await expectLedgerMatchesDisk(user);
  });


  test('maxTransfersPerUser and maxConnectionsPerIp hold under bursts of connections opened and cut together, and slots come back', async () => {
    const user = await makeUser('t', 'write', 't');
    const perIp = 6;
    const perUser = 3;
    server = await startSecureServer({ server: { maxConnectionsPerIp: perIp }, limits: { maxTransfersPerUser: perUser }, auth: { users: [user.entry] } });
    for (let round = 0; round < 3; round++) {
      // 20 connections at once: at most perIp are served, the rest are refused.
      const attempts = await Promise.allSettled(Array.from({ length: 20 }, () => Wire.open(server!.port)));
      const opened = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
      wires.push(...opened);
      const served = opened.filter((w) => w.greeting.startsWith('OK'));
      expect(served.length).toBeLessThanOrEqual(perIp);
      expect(server.connections()).toBeLessThanOrEqual(perIp);
      // Each served connection starts a big upload and holds it: at most perUser are accepted.
      const replies = await Promise.all(
        served.map(async (w) => {
          if ((await w.auth(user.token)) !== 'OK auth t write') return 'no auth';
          await w.send(`UPLOAD ${4 * MiB}\nhold-${round}-${Math.random()}.bin\n`);
          return w.line().catch(() => 'gone');
        }),
      );
      expect(replies.filter((r) => r === 'OK file recv').length).toBeLessThanOrEqual(perUser);
      // Cut all at once.
      destroyAll(wires);
      await eventually(async () => server!.connections() === 0, 'every connection to be gone');
    }
    // The slots came back: perIp connections are served, perUser transfers are accepted.
    const again = await Promise.all(Array.from({ length: perIp }, () => Wire.open(server!.port)));
    wires.push(...again);
    expect(again.every((w) => w.greeting.startsWith('OK'))).toBe(true);
    const holders = again.slice(0, perUser);
    for (const [i, w] of holders.entries()) {
      expect(await w.auth(user.token)).toBe('OK auth t write');
      await eventually(async () => {
        await w.send(`UPLOAD ${4 * MiB}\nfinal-${i}.bin\n`);
        const r = await w.line();
        return r === 'OK file recv';
      }, 'a transfer slot to be free');
    }
  });
});
