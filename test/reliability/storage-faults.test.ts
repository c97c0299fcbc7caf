import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { userFiles } from '../helpers/server';
import { KiB, MiB, useFaultyServer } from './support/faulty-storage';

/**
 * Issue 17, storage faults through the container: the real local adapter, rebound with a wrapper
 * that fails or hangs the call it is told to, once. Each failure must give the client one clean ERR
 * with a storage code, commit nothing, leave no staging file, descriptor or transfer slot behind,
 * and leave the connection (where the protocol allows) and the server serving.
 */

describe('storage faults, injected through the container', () => {
  const harness = useFaultyServer();
  const { connect, nothingLeaked, stillServes } = harness;

  test.each([
    ['the staging file cannot be opened', 'beginWrite', 300 * KiB],
    ['a write fails mid-data (staging file)', 'write', 300 * KiB],
    ['a write fails mid-data (kept partial)', 'write', 2 * MiB],
    ['the commit fails (fsync, rename)', 'commit', 300 * KiB],
    ['the commit fails, kept partial', 'commit', 2 * MiB],
    ['the commit fails, small file (the group-commit worker)', 'commit', 50 * KiB],
  ] as const)('upload: %s → one ERR STORAGE_FAILED, nothing stored, the connection goes on', async (_label, fault, size) => {
    const client = await connect();
    harness.storage.next = fault;
    const data = randomBytes(size);
    await client.send(uploadRequest('keep.bin', data));
    const reply = await client.readUploadOutcome();
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*EIO/);
    expect(reply).not.toContain('/srv/secret');
    expect(await readFile(join(harness.server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
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
    harness.storage.next = fault;
    await client.send(request);
    const reply = await client.readLine();
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*EIO/);
    expect(reply).not.toContain('/srv/secret');
    expect(await userFiles(harness.server.root)).toEqual(['keep.bin']);
    await stillServes(client);
    await nothingLeaked();
  });

  test('storage that takes no data for a stall window: ERR STORAGE_FAILED at the trailer, the socket let go, the connection and slot free', async () => {
    const client = await connect();
    harness.storage.next = 'hangWrite';
    const data = randomBytes(6 * MiB);
    await client.send(uploadRequest('hung.bin', data));
    const reply = await client.readUploadOutcome(20_000);
    expect(reply).toMatch(/^ERR STORAGE_FAILED .*took none/);
    expect(await userFiles(harness.server.root)).toEqual(['keep.bin']);
    await stillServes(client);
    await nothingLeaked();
  }, 40_000);

  test('a read error mid-download cuts that connection (its bytes cannot be taken back); other clients go on', async () => {
    const data = randomBytes(4 * MiB);
    await writeFile(join(harness.server.root, 'big.bin'), data);
    const client = await connect();
    harness.storage.next = 'readMidStream';
    await client.send(downloadRequest('big.bin'));
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
    const rest = await client.waitClosed(10_000);
    // Fewer bytes than announced: the client knows the download failed (and its digest would not match).
    expect(rest.length).toBeLessThan(data.length);
    await nothingLeaked();
  });
});
