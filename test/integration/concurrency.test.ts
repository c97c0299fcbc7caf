import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/index';
import { RawClient, sha256 } from '../helpers/raw-client';
import { TestServer, stagingFiles, startTestServer, userFiles } from '../helpers/server';

const MiB = 1024 * 1024;

/** Fixed pseudo-random bytes (newlines included), so the garbage is the same on every run. */
const noise = (size: number): Buffer => Buffer.from(Array.from({ length: size }, (_, i) => (i * 7919 + ((i * i) % 251)) % 256));

describe('many clients at once', () => {
  let server: TestServer;
  const clients: RxferClient[] = [];
  const raws: RawClient[] = [];

  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const raw of raws.splice(0)) raw.destroy();
    await server.close();
  });

  const connect = async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    clients.push(client);
    return client;
  };

  test('20 clients each upload and download a distinct ~1 MiB file: all byte-identical, on disk too', async () => {
    const files = Array.from({ length: 20 }, (_, i) => ({ name: `c${i}/file-${i}.bin`, data: randomBytes(MiB + i * 4099) }));
    const connected = await Promise.all(files.map(() => connect()));
    const results = await Promise.all(
      files.map(async (file, i) => {
        const client = connected[i]!;
        const stored = await client.uploadBuffer(file.name, file.data);
        const back = await client.downloadBuffer(file.name);
        await client.quit();
        return { stored, back };
      }),
    );
    for (const [i, { stored, back }] of results.entries()) {
      const file = files[i]!;
      expect(stored).toEqual({ size: file.data.length, digest: sha256(file.data) });
      expect(back.data.equals(file.data)).toBe(true);
      expect((await readFile(join(server.root, file.name))).equals(file.data)).toBe(true);
    }
    expect(await userFiles(server.root)).toEqual(files.map((file) => file.name).sort());
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('one client sending garbage does not disturb 5 others transferring', async () => {
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `good-${i}.bin`, data: randomBytes(MiB) }));
    const connected = await Promise.all(files.map(() => connect()));

    const garbage = (async () => {
      const replies: string[] = [];
      for (const junk of [noise(64 * 1024), Buffer.from('HELLO\n'), Buffer.from('UPLOAD 99999999999999999999\n'), Buffer.alloc(10_000, 'A')]) {
        const raw = await RawClient.connect(server.port);
        raws.push(raw);
        await raw.send(junk).catch(() => undefined);
        replies.push(await raw.readLine());
        await raw.waitClosed();
      }
      return replies;
    })();

    const transfers = Promise.all(
      files.map(async (file, i) => {
        const client = connected[i]!;
        // Several rounds each, so the transfers overlap the garbage.
        for (let round = 0; round < 3; round++) {
          await expect(client.uploadBuffer(file.name, file.data)).resolves.toEqual({ size: MiB, digest: sha256(file.data) });
          expect((await client.downloadBuffer(file.name)).data.equals(file.data)).toBe(true);
        }
        await client.quit();
      }),
    );

    const [garbageReplies] = await Promise.all([garbage, transfers]);
    for (const reply of garbageReplies) expect(reply).toMatch(/^ERR (BAD_COMMAND|LINE_TOO_LONG) /);
    for (const file of files) expect((await readFile(join(server.root, file.name))).equals(file.data)).toBe(true);
    expect(await userFiles(server.root)).toEqual(files.map((file) => file.name).sort());
  });

  test('ADDFILE races: 8 clients add the same name at once; exactly one wins, the rest get EXISTS', async () => {
    const contenders = Array.from({ length: 8 }, (_, i) => Buffer.from(`contender ${i} `.repeat(1000 + i)));
    const sockets = await Promise.all(contenders.map(() => RawClient.connect(server.port)));
    raws.push(...sockets);
    // Every header is accepted while the name is free; the commit is where only one may win.
    await Promise.all(sockets.map((raw, i) => raw.send(`ADDFILE ${contenders[i]!.length}\nprize.txt\n`)));
    expect(await Promise.all(sockets.map((raw) => raw.readLine()))).toEqual(Array(8).fill('OK file recv'));
    await Promise.all(sockets.map((raw, i) => raw.send(Buffer.concat([contenders[i]!, Buffer.from(`SHA256 ${sha256(contenders[i]!)}\n`)]))));
    const finalReplies = await Promise.all(sockets.map((raw) => raw.readLine()));

    const winners = finalReplies.flatMap((reply, i) => (reply.startsWith('OK file data recv ') ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const reply of finalReplies.filter((_, i) => i !== winners[0])) expect(reply).toMatch(/^ERR EXISTS /);
    const winner = contenders[winners[0]!]!;
    expect(finalReplies[winners[0]!]).toBe(`OK file data recv ${winner.length} ${sha256(winner)}`);
    expect((await readFile(join(server.root, 'prize.txt'))).equals(winner)).toBe(true);
    expect(await stagingFiles(server.root)).toEqual([]);
  });
});
