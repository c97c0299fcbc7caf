import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, eventually, sha256, uploadBytes } from '../security/support/wire';
import { untilSettled } from '../helpers/settled';
import { listRequest, readListAnswer, replySource } from '../helpers/raw-client';

/**
 * Issue 16, finding 4 (what LIST shows): LIST reads no file. Small files' digests come from what the
 * server learnt when it committed them (the folder's digest log), or from a STAT that hashed one
 * once; a file it knows nothing of, or that changed behind its back, shows `-`. Before the fix LIST
 * read and hashed every file of 64 KiB or less (the `-` assertions failed), 1,000 pipelined LISTs
 * of a 500-file folder burned ≈ 95 CPU-seconds.
 */

/** A LIST answer as { name: digest } ('-' where none is given). */
const list = async (wire: Wire, folder: string): Promise<Record<string, string>> => {
  await wire.send(listRequest(folder));
  return Object.fromEntries((await readListAnswer(replySource(wire))).files.map((file) => [file.name, file.digest]));
};

describe('issue 16: LIST reads no file; the server knows its small files’ digests', () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  const open = async (port = server.port) => {
    const wire = await Wire.open(port);
    wires.push(wire);
    return wire;
  };
  afterEach(async () => {
    destroyAll(wires);
    await server?.close();
  });

  test('uploaded small files are listed with their digests; a file put there by other means, or changed, with none', async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
    const files = Array.from({ length: 50 }, (_, i) => randomBytes(1000 + i * 700));
    const wire = await open();
    await wire.send(Buffer.concat(files.map((data, i) => uploadBytes(`lo/f${i}`, data))));
    for (const data of files) expect([await wire.line(), await wire.line()]).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`]);

    await writeFile(join(server.root, 'lo', 'direct.txt'), 'put there by other means\n');
    // Left alone for two seconds: a version changed in the last seconds is hashed, not recorded (DigestIndex.rememberHashed).
    await untilSettled();
    // Same size, new content: the record no longer describes the file.
    await writeFile(join(server.root, 'lo', 'f3'), randomBytes(files[3]!.length));
    const listed = await list(wire, 'lo');
    expect(Object.keys(listed)).toHaveLength(51);
    for (const [i, data] of files.entries()) expect(listed[`lo/f${i}`]).toBe(i === 3 ? '-' : sha256(data));
    expect(listed['lo/direct.txt']).toBe('-');

    // A STAT hashes an unknown small file once; from then on LIST knows it too.
    await wire.send('STAT\nlo/direct.txt\n');
    expect(await wire.line()).toMatch(new RegExp(`^OK stat file 25 ${sha256('put there by other means\n')} \\d+$`));
    await eventually(async () => (await list(wire, 'lo'))['lo/direct.txt'] === sha256('put there by other means\n'), 'the STAT’s digest to reach the log');

    // A renamed small file keeps its digest.
    await wire.send('RENAME\nlo/f1\nlo/moved/f1\n');
    expect(await wire.line()).toBe('OK renamed');
    expect((await list(wire, 'lo/moved'))['lo/moved/f1']).toBe(sha256(files[1]!));
    await wire.send('STAT\nlo/moved/f1\n');
    expect(await wire.line()).toMatch(new RegExp(`^OK stat file ${files[1]!.length} ${sha256(files[1]!)} `));
  });

  test('the digests survive a restart of the server', async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
    const data = randomBytes(3000);
    const wire = await open();
    expect(await wire.upload('keep/a.bin', data)).toEqual(['OK file recv', `OK file data recv 3000 ${sha256(data)}`]);
    const { base } = server;
    wire.destroy();
    await server.running.close();
    const again = await startSecureServer({ auth: { anonymous: 'write' } }, base);
    try {
      const next = await open(again.port);
      expect(await list(next, 'keep')).toEqual({ 'keep/a.bin': sha256(data) });
    } finally {
      await again.close();
    }
  });

  test('a folder whose files are replaced again and again keeps a small log (compacted), and the right digests', async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
    const wire = await open();
    let last: Buffer[] = [];
    for (let round = 0; round < 12; round++) {
      last = Array.from({ length: 100 }, () => randomBytes(200));
      await wire.send(Buffer.concat(last.map((data, i) => uploadBytes(`churn/f${i}`, data))));
      for (let i = 0; i < 2 * last.length; i++) expect(await wire.line()).toMatch(/^OK file (data )?recv/);
    }
    const listed = await list(wire, 'churn');
    for (const [i, data] of last.entries()) expect(listed[`churn/f${i}`]).toBe(sha256(data));
    // 1,200 records of ≈ 150 bytes were appended; compaction keeps the log near its 100 live ones.
    const logs = join(server.root, '.rxfer', 'sums', 'folders');
    const sizes = await Promise.all((await readdir(logs)).map(async (name) => (await stat(join(logs, name))).size));
    expect(Math.max(...sizes)).toBeLessThan(100 * 1024);
  });

  test('a LIST of a folder of small files put there by other means reads none of them: all `-`', async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
    await mkdir(join(server.root, 'other'));
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeFile(join(server.root, 'other', `f${i}`), randomBytes(4096))));
    const wire = await open();
    const listed = await list(wire, 'other');
    expect(Object.values(listed)).toEqual(Array(20).fill('-'));
  });
});
