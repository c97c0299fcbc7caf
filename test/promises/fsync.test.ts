// Must come first: it wraps node:fs before src/ takes its functions (see the module's comment).
import { journal, restoreFs, watchHandleSyncs } from './support/fs-journal';
import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { RawClient, destroyAll, uploadRequest } from '../helpers/raw-client';
import { TestServer, startTestServer } from '../helpers/server';

/**
 * Promise (PROTOCOL.md, UPLOAD): only when count and digest match does the server "fsync the
 * staging file, rename it over the real name and fsync the folder". Without those fsyncs every
 * test still passed (a crash is what loses the data). This checks the order in the journal of
 * real fs calls: the staged data is fsynced before the name changes, the folder after it.
 */
const KiB = 1024;

describe('a commit is durable: fsync the data, then rename or link, then fsync the folder', () => {
  let server: TestServer;
  let root: string;
  const clients: RawClient[] = [];
  beforeAll(watchHandleSyncs);
  afterAll(restoreFs);
  beforeEach(async () => {
    server = await startTestServer();
    root = await realpath(server.root);
    journal.length = 0;
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  const upload = async (verb: 'UPLOAD' | 'ADDFILE', name: string, size: number) => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(uploadRequest(name, randomBytes(size), { verb }));
    expect(await client.readUploadOutcome(20_000)).toMatch(/^OK file data recv /);
  };

  /** Checks the journal around the step that gave `target` its name. */
  const expectDurable = (op: 'rename' | 'link', target: string, folder: string) => {
    const at = journal.findIndex((entry) => entry.op === op && entry.to === target);
    expect(at).toBeGreaterThanOrEqual(0);
    const step = journal[at] as Extract<(typeof journal)[number], { from: string }>;
    const dataSynced = journal.slice(0, at).some((entry) => entry.op === 'fsync' && entry.path === step.from);
    const folderSynced = journal.slice(at + 1).some((entry) => entry.op === 'fsync' && entry.path === folder);
    expect({ dataSyncedBefore: dataSynced, folderSyncedAfter: folderSynced }).toEqual({ dataSyncedBefore: true, folderSyncedAfter: true });
  };

  test.each([
    ['UPLOAD of 200 KiB (staging file, rename)', 'UPLOAD', 200 * KiB, 'rename'],
    ['ADDFILE of 200 KiB (staging file, link)', 'ADDFILE', 200 * KiB, 'link'],
    ['UPLOAD of 1.5 MiB (kept partial upload, rename)', 'UPLOAD', 1536 * KiB, 'rename'],
    ['ADDFILE of 1.5 MiB (kept partial upload, link)', 'ADDFILE', 1536 * KiB, 'link'],
  ] as const)('%s', async (_what, verb, size, op) => {
    await upload(verb, 'deep/er/file.bin', size);
    expectDurable(op, join(root, 'deep', 'er', 'file.bin'), join(root, 'deep', 'er'));
  });
});
