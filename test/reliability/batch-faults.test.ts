import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { batchRequest, sha256 } from '../helpers/raw-client';
import { userFiles } from '../helpers/server';
import { KiB, STALL_MS, lateBy, useFaultyServer } from './support/faulty-storage';

/**
 * BATCH against storage that fails or hangs on command (FaultyStorage, bound through the container):
 * the file whose storage call failed gets its ERR and nothing under its name; the files around it
 * are stored and answered; nothing is leaked. FaultyStorage's failing writes have no `writeWhole`,
 * so these files also go through a staged write's stream, as on S3 or any other adapter.
 */
describe('BATCH with storage faults', () => {
  const harness = useFaultyServer();
  const stored = (data: Buffer) => `OK file data recv ${data.length} ${sha256(data)}`;

  test.each([
    ['the staging write cannot be opened', 'beginWrite'],
    ['the commit fails (fsync, rename)', 'commit'],
  ] as const)('%s: that file alone is STORAGE_FAILED, the file it would replace is untouched', async (_label, fault) => {
    const client = await harness.connect();
    // Above the small-file size (64 KiB): they go through a staging file, and the small-commit
    // worker (whose thread's descriptors would count as leaked) is not started.
    const first = randomBytes(100 * KiB);
    const last = randomBytes(200 * KiB);
    // The fault hits the first storage call of its kind: the batch's files reach storage in order,
    // but side by side, so the failing one is sent alone first.
    harness.storage.next = fault;
    await client.send(batchRequest([{ name: 'keep.bin', data: randomBytes(4 * KiB) }]));
    const reply = await client.readLine();
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*EIO/);
    expect(reply).not.toContain('/srv/secret');
    await client.send(batchRequest([{ name: 'first.bin', data: first }, { name: 'last.bin', data: last }]));
    expect(await client.readLines(2)).toEqual([stored(first), stored(last)]);
    expect(await readFile(join(harness.server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
    await harness.stillServes(client);
    await harness.nothingLeaked();
  });

  test.each([
    ['opening the staging write answers late', 'hangBeginWrite'],
    ['the commit never answers', 'hangCommit'],
  ] as const)('%s: STORAGE_FAILED after the deadline, nothing stored under the name, the connection goes on', async (_label, fault) => {
    const client = await harness.connect();
    harness.storage.next = fault;
    await client.send(batchRequest([{ name: 'keep.bin', data: randomBytes(4 * KiB) }]));
    expect(await client.readLine(4 * STALL_MS + 5000)).toMatch(/^ERR STORAGE_FAILED storage did not store keep\.bin within 1500 ms/);
    await harness.stillServes(client);
    if (fault === 'hangBeginWrite') {
      // The staging write that opened after the deadline was given back, never committed.
      await lateBy();
      expect(harness.storage.lateStaged).toBeDefined();
    }
    expect(await readFile(join(harness.server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
    await harness.nothingLeaked();
    expect(await userFiles(harness.server.root)).toEqual(['keep.bin', 'slot-check.bin']);
  }, 30_000);
});
