import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/load-config';
import { changedKeys, reloadConfig } from '../../src/server/reload-config';

const HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

describe('reloadConfig (SIGHUP)', () => {
  let tmp: string;
  let path: string;
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-reload-'));
    path = join(tmp, 'rxfer.json');
    lines.length = 0;
  });
  afterEach(() => rm(tmp, { recursive: true, force: true }));

  const write = (value: unknown) => writeFile(path, JSON.stringify(value));

  test('users and limits are put in place in the running config object; other sections are reported, not applied', async () => {
    await write({ server: { port: 9000 }, limits: { maxTransfersPerUser: 4 } });
    const live = loadConfig({ configPath: path });
    const limitsBefore = live.limits;
    await write({ server: { port: 9001 }, limits: { maxTransfersPerUser: 8 }, auth: { users: [{ name: 'bob', tokenHash: HASH, root: '' }] } });
    const result = reloadConfig(live, path, {}, logger);
    expect(result).toEqual({ applied: true, changed: expect.arrayContaining(['limits.maxTransfersPerUser', 'auth.users', 'auth.anonymous']), ignored: ['server.port'] });
    expect(live.limits.maxTransfersPerUser).toBe(8);
    // A new object: sessions that captured the old limits keep them.
    expect(limitsBefore.maxTransfersPerUser).toBe(4);
    expect(live.auth.users.map((user) => user.name)).toEqual(['bob']);
    expect(live.auth.anonymous).toBe('none');
    expect(live.server.port).toBe(9000);
    expect(lines.some((line) => String(line['msg']).includes('need a restart') && String(line['msg']).includes('server.port'))).toBe(true);
    expect(JSON.stringify(lines)).not.toContain(HASH);
  });

  test('an invalid file changes nothing and names the key', async () => {
    await write({ limits: { maxTransfersPerUser: 4 } });
    const live = loadConfig({ configPath: path });
    const snapshot = JSON.stringify(live);
    await write({ limits: { maxTransfersPerUser: 'many' }, auth: { users: [{ name: 'bob', tokenHash: HASH, root: '' }] } });
    const result = reloadConfig(live, path, {}, logger);
    expect(result.applied).toBe(false);
    expect(JSON.stringify(live)).toBe(snapshot);
    expect(lines.at(-1)?.['msg']).toMatch(/^SIGHUP: reload refused, the running config stays: .*limits\.maxTransfersPerUser/);
  });

  test('without a config file there is nothing to reload', () => {
    const live = loadConfig();
    expect(reloadConfig(live, undefined, {}, logger)).toEqual({ applied: false, reason: expect.stringContaining('--config') });
  });

  test('changedKeys names leaf keys', () => {
    expect(changedKeys({ a: { b: 1, c: [1] }, d: 2 }, { a: { b: 2, c: [1] }, d: 2, e: 3 })).toEqual(['a.b', 'e']);
  });
});
