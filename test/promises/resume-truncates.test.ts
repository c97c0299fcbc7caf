import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RawClient, destroyAll, sha256 } from '../helpers/raw-client';
import { TestServer, startTestServer, userFiles } from '../helpers/server';
import { interruptUpload, keptUploads, resumeReply, waitReleased } from './support/kept-uploads';

/**
 * Promise (PROTOCOL.md, Resume): an `UPLOAD … FROM <offset>` cuts whatever is kept beyond the
 * offset before it goes on. Killed on purpose (no ftruncate in PartialUploads.reopen), the server
 * stored or reported a file of the kept length, not the declared one.
 */
const MiB = 1024 * 1024;

describe('a resume cuts what is kept beyond its offset', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test('2 MiB kept, a 1.5 MiB file resumed at 1 MiB: OK with the new file, exactly its bytes stored, nothing kept', async () => {
    const first = randomBytes(2 * MiB);
    await interruptUpload(server.port, server.root, 'big.bin', first, 3 * MiB);
    await waitReleased(server.port, 'big.bin');
    expect(await resumeReply(server.port, 'big.bin')).toBe(`OK partial ${2 * MiB} ${sha256(first)}`);

    // The new file shares only the first MiB with what is kept.
    const second = Buffer.concat([first.subarray(0, MiB), randomBytes(MiB / 2)]);
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(`UPLOAD ${second.length} FROM ${MiB} ${sha256(second.subarray(0, MiB))}\nbig.bin\n`);
    expect(await client.readLine()).toBe('OK file recv');
    await client.send(Buffer.concat([second.subarray(MiB), Buffer.from(`SHA256 ${sha256(second)}\n`)]));
    expect(await client.readLine()).toBe(`OK file data recv ${second.length} ${sha256(second)}`);

    const stored = await readFile(join(server.root, 'big.bin'));
    expect(stored.length).toBe(second.length);
    expect(sha256(stored)).toBe(sha256(second));
    expect(await userFiles(server.root)).toEqual(['big.bin']);
    expect(await keptUploads(server.root)).toEqual([]);
  });

  test('a resume at the end of what is kept (nothing to cut) still stores exactly the file', async () => {
    const data = randomBytes(2 * MiB);
    await interruptUpload(server.port, server.root, 'exact.bin', data.subarray(0, MiB), data.length);
    await waitReleased(server.port, 'exact.bin');
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(`UPLOAD ${data.length} FROM ${MiB} ${sha256(data.subarray(0, MiB))}\nexact.bin\n`);
    expect(await client.readLine()).toBe('OK file recv');
    await client.send(Buffer.concat([data.subarray(MiB), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await client.readLine()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    expect(sha256(await readFile(join(server.root, 'exact.bin')))).toBe(sha256(data));
  });
});
