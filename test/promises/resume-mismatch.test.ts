import { randomBytes } from 'node:crypto';
import { RawClient, destroyAll, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, startTestServer, userFiles } from '../helpers/server';
import { interruptUpload, keptUploads, waitReleased } from './support/kept-uploads';

/**
 * Promise (PROTOCOL.md, Resume): a prefix that cannot be proven is `ERR RESUME_MISMATCH` — when
 * nothing is kept, and when fewer bytes are kept than the offset claims — the rest of the request
 * is still read (the connection stays in step), and kept bytes that cannot be used are deleted.
 */
const MiB = 1024 * 1024;

describe('RESUME_MISMATCH when the kept prefix cannot be proven', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  /** Sends a resumed upload whole (header, rest, trailer) then a small upload; returns both outcomes. */
  const resumeThenUpload = async (name: string, data: Buffer, offset: number): Promise<[string, string]> => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(
      Buffer.concat([
        Buffer.from(`UPLOAD ${data.length} FROM ${offset} ${sha256(data.subarray(0, offset))}\n${name}\n`),
        data.subarray(offset),
        Buffer.from(`SHA256 ${sha256(data)}\n`),
        uploadRequest('after.txt', 'still in step\n'),
      ]),
    );
    return [await client.readUploadOutcome(), await client.readUploadOutcome()];
  };

  test('nothing kept: ERR RESUME_MISMATCH naming the reason; nothing stored; the next request is served', async () => {
    const data = randomBytes(2 * MiB);
    const [resumed, after] = await resumeThenUpload('none.bin', data, MiB);
    expect(resumed).toBe(`ERR RESUME_MISMATCH cannot resume none.bin at ${MiB} bytes: no interrupted upload of it is kept; upload it from the start`);
    expect(after).toBe(`OK file data recv 14 ${sha256('still in step\n')}`);
    expect(await userFiles(server.root)).toEqual(['after.txt']);
  });

  test('too little kept (1 MiB kept, FROM 1.5 MiB): ERR RESUME_MISMATCH, and the kept bytes are deleted', async () => {
    const data = randomBytes(2 * MiB);
    await interruptUpload(server.port, server.root, 'short.bin', data.subarray(0, MiB), data.length);
    await waitReleased(server.port, 'short.bin');
    const [resumed, after] = await resumeThenUpload('short.bin', data, MiB + MiB / 2);
    expect(resumed).toBe(`ERR RESUME_MISMATCH cannot resume short.bin at ${MiB + MiB / 2} bytes: only ${MiB} bytes are kept; upload it from the start`);
    expect(after).toMatch(/^OK file data recv 14 /);
    expect(await keptUploads(server.root)).toEqual([]);
    expect(await userFiles(server.root)).toEqual(['after.txt']);
  });

  test('exactly what is kept, proven: the resume is accepted (the refusals above are about the prefix)', async () => {
    const data = randomBytes(2 * MiB);
    await interruptUpload(server.port, server.root, 'ok.bin', data.subarray(0, MiB), data.length);
    await waitReleased(server.port, 'ok.bin');
    const [resumed] = await resumeThenUpload('ok.bin', data, MiB);
    expect(resumed).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
  });
});
