import { randomBytes } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '../helpers/raw-client';
import { TestServer, eventually, startTestServer } from '../helpers/server';
import { interruptUpload, keptUploads, resumeReply, waitReleased } from './support/kept-uploads';

/**
 * Promise (PROTOCOL.md, Resume; config `storage.partialExpiryMs`): kept uploads are deleted after
 * partialExpiryMs without a resume, by the server on its own: once at start, then every
 * min(partialExpiryMs / 4, 1 h). With the timer removed every test still passed (they called
 * `expirePartialUploads` by hand). Here nothing calls it: the shortest expiry the config allows
 * (60 s) gives a 15 s sweep, reached with Jest's fake setInterval only (every other clock is
 * real, so sockets and files behave as always), and the kept file's age is set with utimes.
 */
const MiB = 1024 * 1024;
const EXPIRY_MS = 60_000;
const SWEEP_EVERY_MS = EXPIRY_MS / 4;

const partialPaths = (root: string, name: string): string[] => {
  const id = sha256(name);
  return [join(root, '.rxfer', 'partials', id), join(root, '.rxfer', 'partials', `${id}.json`)];
};

/** Makes the kept upload of `name` look last written `ageMs` ago. */
const age = async (root: string, name: string, ageMs: number): Promise<void> => {
  const then = new Date(Date.now() - ageMs);
  for (const path of partialPaths(root, name)) await utimes(path, then, then);
};

const keep = async (server: TestServer, name: string): Promise<void> => {
  await interruptUpload(server.port, server.root, name, randomBytes(MiB), 2 * MiB);
  await waitReleased(server.port, name);
};

describe('expired partial uploads are swept by the server itself', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    jest.useRealTimers();
    for (const server of servers.splice(0)) await server.close();
  });

  test(`while running: every partialExpiryMs / 4 (${SWEEP_EVERY_MS} ms), an expired upload goes and a recent one stays`, async () => {
    jest.useFakeTimers({ doNotFake: ['Date', 'hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout'] });
    const server = await startTestServer({ config: { storage: { partialExpiryMs: EXPIRY_MS } } });
    servers.push(server);
    await keep(server, 'old.bin');
    await keep(server, 'recent.bin');
    await age(server.root, 'old.bin', EXPIRY_MS + 30_000);
    expect(await keptUploads(server.root)).toHaveLength(2);

    jest.advanceTimersByTime(SWEEP_EVERY_MS);
    await eventually(async () => (await keptUploads(server.root)).length === 1, 10_000, 'the sweep to delete the expired upload');
    expect(await keptUploads(server.root)).toEqual([sha256('recent.bin')]);
    expect(await resumeReply(server.port, 'old.bin')).toMatch(/^NOT FOUND/);
    expect(await resumeReply(server.port, 'recent.bin')).toMatch(/^OK partial 1048576 /);
  });

  test('at start: an upload kept past its expiry while the server was down is gone before the first client', async () => {
    const first = await startTestServer({ config: { storage: { partialExpiryMs: EXPIRY_MS } } });
    servers.push(first);
    await keep(first, 'stale.bin');
    await keep(first, 'young.bin');
    await first.stop();
    await age(first.root, 'stale.bin', EXPIRY_MS + 1000);
    await age(first.root, 'young.bin', EXPIRY_MS - 20_000);

    const second = await startTestServer({ config: { storage: { root: first.root, partialExpiryMs: EXPIRY_MS } } });
    servers.push(second);
    expect(await keptUploads(first.root)).toEqual([sha256('young.bin')]);
    expect(await resumeReply(second.port, 'stale.bin')).toMatch(/^NOT FOUND/);
  });
});
