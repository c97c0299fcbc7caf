import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, sha256 } from '../security/support/wire';

/**
 * A quota holds against uploads that arrive together (README: `quotaBytes`). The ledger used to
 * read the user's count, then wait for the size of the file being replaced, then reserve: every
 * upload whose header arrived in that window saw the same room and took it. Eight connections of
 * one user, each uploading 300,000 bytes under a 1,000,000-byte quota, all got `OK file recv`, and
 * all eight files were stored (2.4 MB for a user allowed 1 MB).
 */

const QUOTA = 1_000_000;
const SIZE = 300_000;
const UPLOADS = 8;

describe('a quota against uploads that arrive together', () => {
  let server: SecureServer;
  let user: TestUser;
  const wires: Wire[] = [];

  beforeEach(async () => {
    user = await makeUser('c', 'write', 'c', QUOTA);
    server = await startSecureServer({ auth: { users: [user.entry] } });
  });
  afterEach(async () => {
    destroyAll(wires);
    await server.close();
  });

  const open = async () => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toBe('OK auth c write');
    return wire;
  };

  const storedBytes = async (): Promise<number> => {
    const names = (await readdir(join(server.root, 'c'))).filter((name) => name.startsWith('f'));
    const sizes = await Promise.all(names.map(async (name) => (await stat(join(server.root, 'c', name))).size));
    return sizes.reduce((sum, size) => sum + size, 0);
  };

  test('eight uploads at once, three fit: three are stored, five refused with QUOTA_EXCEEDED before any data', async () => {
    const wiresOpen = await Promise.all(Array.from({ length: UPLOADS }, () => open()));
    // Every header goes out before any reply is read, so the server checks them side by side.
    await Promise.all(wiresOpen.map((wire, i) => wire.send(`UPLOAD ${SIZE}\nf${i}\n`)));
    const headers = await Promise.all(wiresOpen.map((wire) => wire.line()));
    const fits = Math.floor(QUOTA / SIZE);
    expect(headers.filter((line) => line === 'OK file recv')).toHaveLength(fits);
    expect(headers.filter((line) => line.startsWith('ERR QUOTA_EXCEEDED '))).toHaveLength(UPLOADS - fits);
    const accepted = wiresOpen.filter((_, i) => headers[i] === 'OK file recv');

    // The accepted ones complete and are stored, byte for byte; nothing else is.
    await Promise.all(
      accepted.map(async (wire) => {
        const data = randomBytes(SIZE);
        await wire.send(Buffer.concat([data, Buffer.from(`SHA256 ${sha256(data)}\n`)]));
        expect(await wire.line()).toBe(`OK file data recv ${SIZE} ${sha256(data)}`);
      }),
    );
    expect(await storedBytes()).toBe(accepted.length * SIZE);
    expect(await storedBytes()).toBeLessThanOrEqual(QUOTA);
  });

  /** Sends the data and trailer of an upload whose header was answered `OK file recv`; returns the reply. */
  const finish = async (wire: Wire, data: Buffer): Promise<string> => {
    await wire.send(Buffer.concat([data, Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    return wire.line();
  };
  const store = async (name: string, data: Buffer): Promise<void> => {
    const wire = await open();
    await wire.send(`UPLOAD ${data.length}\n${name}\n`);
    expect(await wire.line()).toBe('OK file recv');
    expect(await finish(wire, data)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
  };

  test('small files (committed by the worker) taken away while an upload replacing them is in flight: stored if it fits without them, else refused at its commit', async () => {
    // 940,000 of 1,000,000 stored; each upload replaces a file that a DELETE or RENAME on another connection takes away first.
    const old = randomBytes(SIZE);
    await store('f-old', old);
    await store('f-other', randomBytes(2 * SIZE));
    const small = randomBytes(40_000);
    await store('f-small', small);
    const uploader = await open();
    await uploader.send(`UPLOAD ${small.length}\nf-small\n`);
    expect(await uploader.line()).toBe('OK file recv');
    const deleter = await open();
    await deleter.send('DELETE\nf-small\n');
    expect(await deleter.line()).toMatch(/^OK /);
    // 600,000 + 300,000 stored, 40,000 in flight: it fits without the credit, so it is stored.
    expect(await finish(uploader, small)).toBe(`OK file data recv ${small.length} ${sha256(small)}`);

    const over = randomBytes(60_000);
    await store('f-over', randomBytes(60_000)); // 940,000 + 60,000 = 1,000,000: full
    const replacer = await open();
    await replacer.send(`UPLOAD ${over.length}\nf-over\n`);
    expect(await replacer.line()).toBe('OK file recv');
    const remover = await open();
    await remover.send('DELETE\nf-small\n');
    expect(await remover.line()).toMatch(/^OK /);
    await remover.send('RENAME\nf-over\nf-moved\n');
    expect(await remover.line()).toMatch(/^OK /);
    expect(await finish(replacer, over)).toMatch(/^ERR QUOTA_EXCEEDED c would use 1020000 of 1000000 bytes: the 60000-byte file this upload was to replace is no longer there/);
    // f-old, f-other and f-moved: the refused upload stored nothing.
    expect(await storedBytes()).toBe(SIZE + 2 * SIZE + 60_000);
  });

  test('replacements in flight together, each over a file that stays: all are stored', async () => {
    // 700,000 of 1,000,000 stored. The first upload replaces f-b (100,000), the second f-a (600,000): with both in
    // flight the count is 1,400,000, and the first commit alone leaves 1,300,000 until the second replaces f-a. Each
    // commit counts what the others in flight still owe for the files they replace: none is refused for them.
    const a = randomBytes(600_000);
    const b = randomBytes(100_000);
    await store('f-a', a);
    await store('f-b', b);
    const first = await open();
    await first.send(`UPLOAD ${b.length}\nf-b\n`);
    expect(await first.line()).toBe('OK file recv');
    const second = await open();
    await second.send(`UPLOAD ${a.length}\nf-a\n`);
    expect(await second.line()).toBe('OK file recv');
    const [b2, a2] = [randomBytes(b.length), randomBytes(a.length)];
    expect(await finish(first, b2)).toBe(`OK file data recv ${b.length} ${sha256(b2)}`);
    expect(await finish(second, a2)).toBe(`OK file data recv ${a.length} ${sha256(a2)}`);
    expect(await storedBytes()).toBe(a.length + b.length);
  });
});
