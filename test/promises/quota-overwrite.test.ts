import { randomBytes } from 'node:crypto';
import { SecureServer, TestUser, makeUser, startSecureServer } from '../security/support/server';
import { Wire, destroyAll, sha256 } from '../security/support/wire';

/**
 * Promise (README, quotas): replacing a file counts only the difference against the user's quota:
 * the replaced file's bytes are given back when the new one is committed. Without that, a user who
 * re-uploads a file soon finds the quota "full" with the disk holding far less. Files above 64 KiB
 * (the staging-file path, LocalStagedWrite) and at 2 MiB (a kept partial upload). Real sockets, tokens.
 */
const KiB = 1024;
const MiB = 1024 * KiB;

describe('an overwrite counts only the difference against the quota', () => {
  let server: SecureServer;
  let user: TestUser;
  const wires: Wire[] = [];
  beforeEach(async () => {
    user = await makeUser('quinn', 'write', 'quinn', 3 * MiB);
    server = await startSecureServer({ auth: { users: [user.entry], anonymous: 'none' } });
  });
  afterEach(async () => {
    destroyAll(wires);
    await server.close();
  });

  test.each([
    ['staging file', 900 * KiB, 1800 * KiB],
    ['kept partial upload', 2 * MiB, 900 * KiB],
  ])('%s: the same name uploaded again and again stays within a quota it would exceed if counted twice', async (_what, size, more) => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toMatch(/^OK auth /);
    for (let round = 0; round < 3; round++) {
      const data = randomBytes(size);
      expect(await wire.upload('same.bin', data)).toEqual(['OK file recv', `OK file data recv ${size} ${sha256(data)}`]);
    }
    // Stored: one file of `size`; counted twice or more it would leave no room for `more`.
    const extra = randomBytes(more);
    expect(await wire.upload('more.bin', extra)).toEqual(['OK file recv', `OK file data recv ${more} ${sha256(extra)}`]);
    // And the quota still holds: what does not fit is refused.
    const tooMuch = randomBytes(3 * MiB - size - more + 64 * KiB);
    const refused = await wire.upload('too-much.bin', tooMuch);
    expect(refused[refused.length - 1]).toMatch(/^ERR QUOTA/);
  });
});
