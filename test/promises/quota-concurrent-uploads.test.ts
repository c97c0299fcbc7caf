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
});
