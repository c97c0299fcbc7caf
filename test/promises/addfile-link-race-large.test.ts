import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RawClient, destroyAll, sha256 } from '../helpers/raw-client';
import { TestServer, startTestServer, stagingFiles, userFiles } from '../helpers/server';

/**
 * Promise (PROTOCOL.md, ADDFILE): "if two clients race to add the same name, exactly one wins and
 * the other gets ERR EXISTS". Above 64 KiB the commit is LocalStagedWrite's link() (small files go
 * through the worker, which the older race test covered); with rename() in its place every racer
 * got OK and the last one silently replaced the others. Every racer here passes the header check
 * (all headers are answered before any trailer is sent), so only the commit can decide.
 */
const KiB = 1024;
const RACERS = 6;

describe('ADDFILE races above the small-file size: exactly one wins', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test.each([
    ['200 KiB (a staging file)', 200 * KiB],
    ['1.5 MiB (a kept partial upload for one racer, staging files for the others)', 1536 * KiB],
  ])('%s: one OK, the others ERR EXISTS, the stored file is the winner’s', async (_what, size) => {
    const bodies = Array.from({ length: RACERS }, () => randomBytes(size));
    const racers = await Promise.all(bodies.map(() => RawClient.connect(server.port)));
    clients.push(...racers);
    // Headers and data first: every header is accepted while the name is still free.
    await Promise.all(racers.map((client, i) => client.send(Buffer.concat([Buffer.from(`ADDFILE ${size}\nrace.bin\n`), bodies[i]]))));
    for (const client of racers) expect(await client.readLine()).toBe('OK file recv');
    // Then all trailers at once: the commits race.
    await Promise.all(racers.map((client, i) => client.send(`SHA256 ${sha256(bodies[i])}\n`)));
    const outcomes = await Promise.all(racers.map((client) => client.readLine(20_000)));

    const winners = outcomes.flatMap((line, i) => (line.startsWith('OK file data recv') ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const [i, line] of outcomes.entries()) if (i !== winners[0]) expect(line).toMatch(/^ERR EXISTS /);
    const stored = await readFile(join(server.root, 'race.bin'));
    expect(sha256(stored)).toBe(sha256(bodies[winners[0]]));
    expect(outcomes[winners[0]]).toBe(`OK file data recv ${size} ${sha256(bodies[winners[0]])}`);
    expect(await userFiles(server.root)).toEqual(['race.bin']);
    expect(await stagingFiles(server.root)).toEqual([]);
  });
});
