import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TOKENS } from '../../../src/container/tokens';
import type { RxferServer } from '../../../src/server/rxfer-server';
import type { StorageAdapter } from '../../../src/storage/storage-adapter';
import type { SecureServer, TestUser } from '../../security/support/server';
import { Wire, eventually } from '../../security/support/wire';

/**
 * `count` one-byte files in `folder` (made if missing): walking them keeps the ledger's first
 * measurement of a user's usage busy long enough for a request to land while it runs.
 */
export const manyFiles = async (folder: string, count = 3000): Promise<void> => {
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < count; i++) await writeFile(join(folder, `f${i}`), 'x');
};

/**
 * What the hostile quota tests ask a running server, over real sockets: an authenticated connection,
 * whether an upload of some size would be admitted, and whether the quota ledger agrees with the disk.
 * `server()` is read at each call (each test starts its own); every connection opened is pushed onto
 * `wires`, for the test file's afterEach to destroy.
 */
export const quotaProbes = (server: () => SecureServer, wires: Wire[]) => {
  const open = async (user: TestUser): Promise<Wire> => {
    const wire = await Wire.open(server().port);
    wires.push(wire);
    expect(await wire.auth(user.token)).toBe(`OK auth ${user.entry.name} write`);
    return wire;
  };

  const storage = (): StorageAdapter => server().running.container.get<StorageAdapter>(TOKENS.Storage);

  /** The reply to the header of an upload of `size` bytes: accepted or refused (the data is never sent). */
  const headerReply = async (user: TestUser, size: number): Promise<string> => {
    const wire = await open(user);
    await wire.send(`UPLOAD ${size}\nprobe-${size}\n`);
    const reply = await wire.line();
    wire.destroy();
    await wire.closed;
    return reply;
  };

  /**
   * The ledger agrees with the disk: the bytes stored are within the quota, exactly the room left is
   * admitted, and one byte more is not. When one byte more is admitted, the failure says by how much
   * the ledger is below the disk (the largest upload it still admits, found by halving).
   */
  const expectLedgerMatchesDisk = async (user: TestUser): Promise<void> => {
    const quota = user.entry.quotaBytes!;
    const used = await storage().usage(user.entry.root);
    expect(used).toBeLessThanOrEqual(quota);
    const room = quota - used;
    // A probe's own reservation is given back when its connection is gone: retried until it is.
    await eventually(async () => (await headerReply(user, room)) === 'OK file recv', `an upload of the ${room} bytes left to be accepted (${used} used on disk)`);
    const over = await headerReply(user, room + 1);
    if (over === 'OK file recv') {
      let [low, high] = [room + 1, room + 1 + quota];
      while (high - low > 1) {
        const mid = Math.floor((low + high) / 2);
        if ((await headerReply(user, mid)) === 'OK file recv') low = mid;
        else high = mid;
      }
      expect({ used, acceptedUpTo: low }).toEqual({ used, acceptedUpTo: room });
    }
    expect(over).toMatch(/^ERR QUOTA_EXCEEDED /);
  };

  /**
   * The expiry sweep, now: the very call the server's timer makes every partialExpiryMs / 4 (15 s at the
   * smallest expiry). That the timer runs by itself is tested apart (issue 18's fifth promise).
   */
  const sweepNow = (): Promise<void> => server().running.container.get<RxferServer>(TOKENS.Server).expirePartialUploads();

  return { open, storage, headerReply, expectLedgerMatchesDisk, sweepNow };
};
