import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { userFiles } from '../helpers/server';
import { KiB, MiB, STALL_MS, lateBy, useFaultyServer } from '../reliability/support/faulty-storage';

/**
 * Issue 17, found by the storage-fault tests: a storage call that never answered (open, fsync,
 * rename, stat, a folder walk, unlink, mkdir: a dead NFS mount, a disk that stopped answering) held
 * its request for ever: the client waited without a reply, the connection's later requests on the
 * name waited behind it, and its transfer slot stayed taken. Now every awaited storage call has a
 * deadline of one stall window (`limits.stallTimeoutMs`): the request fails with ERR STORAGE_FAILED,
 * what a late answer brings (an open file, a staging file) is given back, and the connection goes on.
 * A read that stops mid-download cannot get a reply line (data is on the wire): the stall guard cuts
 * that connection, and what it held is freed.
 */
describe('issue 17: storage calls that give no answer get one ERR STORAGE_FAILED once the stall window has passed', () => {
  const harness = useFaultyServer();
  const { connect, nothingLeaked, stillServes } = harness;

  test.each([
    ['STAT (answers late)', 'hangStat', 'STAT\nkeep.bin\n'],
    ['LIST (answers late)', 'hangList', 'LIST\n\n'],
    ['DOWNLOAD open (answers late, with an open file)', 'hangOpenRead', 'DOWNLOAD\nkeep.bin\n'],
    ['DELETE (never answers)', 'hangRemove', 'DELETE\nkeep.bin\n'],
    ['RENAME (never answers)', 'hangRename', 'RENAME\nkeep.bin\nother.bin\n'],
    ['MKDIR (never answers)', 'hangMakeFolder', 'MKDIR\nnew-folder\n'],
  ] as const)('%s', async (_label, fault, request) => {
    const client = await connect();
    harness.storage.next = fault;
    await client.send(request);
    expect(await client.readLine(4 * STALL_MS)).toMatch(/^ERR STORAGE_FAILED storage did not \w+ .* within 1500 ms/);
    await stillServes(client);
    expect(await userFiles(harness.server.root)).toEqual(['keep.bin']);
    // What a late answer brings (an open file) is given back: descriptors return to the baseline.
    if (fault !== 'hangRemove' && fault !== 'hangRename' && fault !== 'hangMakeFolder') await lateBy();
    await nothingLeaked();
  });

  test.each([
    ['opening the staging file (answers late)', 'hangBeginWrite', 300 * KiB],
    ['opening a kept partial upload (answers late)', 'hangBeginWrite', 2 * MiB],
    ['the commit (fsync, rename never answer)', 'hangCommit', 300 * KiB],
    ['the commit of a small file (never answers)', 'hangCommit', 50 * KiB],
    ['the commit of a kept partial upload (never answers)', 'hangCommit', 2 * MiB],
  ] as const)('upload, %s: nothing stored, the staging data gone', async (_label, fault, size) => {
    const client = await connect();
    harness.storage.next = fault;
    const data = randomBytes(size);
    await client.send(uploadRequest('keep.bin', data));
    const reply = await client.readUploadOutcome(4 * STALL_MS + 5000);
    expect(reply).toMatch(/^ERR STORAGE_FAILED storage did not store keep\.bin within 1500 ms/);
    expect(await readFile(join(harness.server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
    await stillServes(client);
    if (fault === 'hangBeginWrite') {
      await lateBy();
      expect(harness.storage.lateStaged).toBeDefined();
    }
    await nothingLeaked();
    expect(await readFile(join(harness.server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
  }, 30_000);

  test('a read that stops mid-download: the connection is cut within a stall window; its file, slot and timers are freed; another client is served', async () => {
    const data = randomBytes(4 * MiB);
    await writeFile(join(harness.server.root, 'big.bin'), data);
    const client = await connect();
    harness.storage.next = 'hangReadMidStream';
    await client.send(downloadRequest('big.bin'));
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
    const rest = await client.waitClosed(6 * STALL_MS);
    expect(rest.length).toBeLessThan(data.length);
    await nothingLeaked();
  }, 30_000);
});
