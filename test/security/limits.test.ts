import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, TestUser, makeUser, stagingFiles, startSecureServer, userFiles } from './support/server';
import { Wire, destroyAll, eventually, sha256, uploadBytes } from './support/wire';

const wires: Wire[] = [];
const servers: SecureServer[] = [];
const open = async (port: number, options: Parameters<typeof Wire.open>[1] = {}) => {
  const wire = await Wire.open(port, options);
  wires.push(wire);
  return wire;
};
const serve = async (options: Parameters<typeof startSecureServer>[0]) => {
  const server = await startSecureServer(options);
  servers.push(server);
  return server;
};
afterEach(async () => {
  destroyAll(wires);
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

/** Opens connections until one gets a greeting (the server frees a slot asynchronously); a failure guard. */
const connectWhenFree = async (port: number, options: Parameters<typeof Wire.open>[1] = {}, guardMs = 5000): Promise<Wire> => {
  let accepted: Wire | undefined;
  await eventually(async () => {
    const wire = await open(port, { ...options, readGreeting: false });
    const line = await wire.line();
    if (line.startsWith('OK rxfer/1')) {
      wire.greeting = line;
      accepted = wire;
      return true;
    }
    expect(line).toMatch(/^ERR TOO_MANY_CONNECTIONS /);
    return false;
  }, 'a free connection slot', guardMs);
  return accepted!;
};

const quit = async (wire: Wire) => {
  await wire.send('QUIT\n');
  expect(await wire.line()).toBe('OK bye');
  await wire.serverClosed();
  wire.destroy();
  await wire.closed;
};

describe('connection limits', () => {
  test('maxConnections: the extra connection gets ERR TOO_MANY_CONNECTIONS and is closed; after a QUIT a new one is accepted', async () => {
    const server = await serve({ server: { maxConnections: 3, maxConnectionsPerIp: 100 }, auth: { anonymous: 'write' } });
    const held = [await open(server.port), await open(server.port), await open(server.port)];
    for (const wire of held) expect(wire.greeting).toMatch(/^OK rxfer\/1 /);
    for (let i = 0; i < 3; i++) {
      const extra = await open(server.port, { readGreeting: false });
      expect(await extra.line()).toMatch(/^ERR TOO_MANY_CONNECTIONS /);
      expect((await extra.serverClosed()).toString()).toBe('');
    }
    // The refused ones did not take a slot, and the held ones still work.
    expect(await held[0]!.upload('still-served.txt', 'ok')).toEqual(['OK file recv', `OK file data recv 2 ${sha256('ok')}`]);
    await quit(held[1]!);
    const next = await connectWhenFree(server.port);
    expect(await next.upload('new-conn.txt', 'ok')).toEqual(['OK file recv', `OK file data recv 2 ${sha256('ok')}`]);
  });

  // Regression (fixed in 23a3f3a): the session's input merged the socket with the server's shutdown$/abort$
  // Subjects, which never complete, so a peer that closed without QUIT was never forgotten: after
  // maxConnections such disconnects the server refused everyone, and a cut upload kept its staging
  // file, quota reservation and transfer slot forever.
  test('maxConnections: after a client closes without QUIT, a new one is accepted', async () => {
    const server = await serve({ server: { maxConnections: 2, maxConnectionsPerIp: 100 }, auth: { anonymous: 'write' } });
    const first = await open(server.port);
    await open(server.port);
    first.destroy();
    await first.closed;
    const next = await connectWhenFree(server.port, {}, 2000);
    expect(next.greeting).toMatch(/^OK rxfer\/1 /);
  });

  test('maxConnectionsPerIp: the extra connection from one address is refused, another address is served, a QUIT frees a slot', async () => {
    const server = await serve({ server: { maxConnections: 50, maxConnectionsPerIp: 2 }, auth: { anonymous: 'write' } });
    const first = await open(server.port);
    await open(server.port);
    const extra = await open(server.port, { readGreeting: false });
    expect(await extra.line()).toMatch(/^ERR TOO_MANY_CONNECTIONS .*127\.0\.0\.1/);
    expect((await extra.serverClosed()).toString()).toBe('');
    // Another loopback address is another peer.
    const other = await open(server.port, { localAddress: '127.0.0.2' });
    expect(other.greeting).toMatch(/^OK rxfer\/1 /);
    await quit(first);
    const next = await connectWhenFree(server.port);
    expect(next.greeting).toMatch(/^OK rxfer\/1 /);
  });

  // Same regression: the per-IP count is decremented on the socket's 'close', which never came.
  test('maxConnectionsPerIp: after a client closes without QUIT, its address gets a new connection', async () => {
    const server = await serve({ server: { maxConnections: 50, maxConnectionsPerIp: 1 }, auth: { anonymous: 'write' } });
    const first = await open(server.port);
    first.destroy();
    await first.closed;
    const next = await connectWhenFree(server.port, {}, 2000);
    expect(next.greeting).toMatch(/^OK rxfer\/1 /);
  });
});

describe('quota (quotaBytes 100 000, staging counts)', () => {
  let q1: TestUser;
  let q2: TestUser;
  beforeAll(async () => {
    [q1, q2] = await Promise.all([makeUser('q1', 'write', 'q1', 100_000), makeUser('q2', 'write', 'q2', 100_000)]);
  });

  test('60 000 fits, another 60 000 is ERR QUOTA_EXCEEDED (nothing stored, connection still usable)', async () => {
    const server = await serve({ auth: { users: [q1.entry] } });
    const wire = await open(server.port);
    expect(await wire.auth(q1.token)).toBe('OK auth q1 write');
    const a = randomBytes(60_000);
    expect(await wire.upload('a.bin', a)).toEqual(['OK file recv', `OK file data recv 60000 ${sha256(a)}`]);
    expect(await wire.upload('b.bin', randomBytes(60_000))).toEqual([expect.stringMatching(/^ERR QUOTA_EXCEEDED /)]);
    expect(await wire.upload('c.bin', randomBytes(40_000), 'ADDFILE')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 40000 /)]);
    expect(await wire.upload('d.bin', randomBytes(1))).toEqual([expect.stringMatching(/^ERR QUOTA_EXCEEDED /)]);
    expect(await userFiles(server.root)).toEqual(['q1/a.bin', 'q1/c.bin']);
    expect(await stagingFiles(server.root)).toEqual([]);
    expect((await wire.download('a.bin')).data?.equals(a)).toBe(true);
  });

  test('replacing the 60 000-byte file with a 50 000-byte one is fine', async () => {
    const server = await serve({ auth: { users: [q1.entry] } });
    const wire = await open(server.port);
    expect(await wire.auth(q1.token)).toBe('OK auth q1 write');
    expect(await wire.upload('a.bin', randomBytes(60_000))).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 60000 /)]);
    const smaller = randomBytes(50_000);
    expect(await wire.upload('a.bin', smaller)).toEqual(['OK file recv', `OK file data recv 50000 ${sha256(smaller)}`]);
    expect((await readFile(join(server.root, 'q1', 'a.bin'))).equals(smaller)).toBe(true);
  });

  test('a staging upload in progress counts: with 30 000 of a 60 000 upload sent, another connection cannot start 50 000', async () => {
    const server = await serve({ auth: { users: [q2.entry] } });
    const slow = await open(server.port);
    expect(await slow.auth(q2.token)).toBe('OK auth q2 write');
    const big = randomBytes(60_000);
    await slow.send(Buffer.concat([Buffer.from('UPLOAD 60000\nbig.bin\n'), big.subarray(0, 30_000)]));
    expect(await slow.line()).toBe('OK file recv');

    const other = await open(server.port);
    expect(await other.auth(q2.token)).toBe('OK auth q2 write');
    expect(await other.upload('other.bin', randomBytes(50_000))).toEqual([expect.stringMatching(/^ERR QUOTA_EXCEEDED /)]);
    expect(await other.upload('small.bin', randomBytes(40_000))).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 40000 /)]);

    // The slow upload completes normally and is counted as stored.
    await slow.send(Buffer.concat([big.subarray(30_000), Buffer.from(`SHA256 ${sha256(big)}\n`)]));
    expect(await slow.line()).toBe(`OK file data recv 60000 ${sha256(big)}`);
    expect(await other.upload('more.bin', randomBytes(1))).toEqual([expect.stringMatching(/^ERR QUOTA_EXCEEDED /)]);
    expect(await userFiles(server.root)).toEqual(['q2/big.bin', 'q2/small.bin']);
  });

  test('an upload the server cuts (BAD_TRAILER closes) frees its reservation and its staging file', async () => {
    const server = await serve({ auth: { users: [q2.entry] } });
    const quitter = await open(server.port);
    expect(await quitter.auth(q2.token)).toBe('OK auth q2 write');
    await quitter.send(Buffer.concat([Buffer.from('UPLOAD 60000\nhalf.bin\n'), randomBytes(60_000), Buffer.from('not a trailer\n')]));
    expect(await quitter.line()).toBe('OK file recv');
    expect(await quitter.line()).toMatch(/^ERR BAD_TRAILER /);
    await quitter.serverClosed();
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 'the staging file to be deleted');
    const next = await open(server.port);
    expect(await next.auth(q2.token)).toBe('OK auth q2 write');
    expect(await next.upload('fits-again.bin', randomBytes(90_000))).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 90000 /)]);
  });

  // Same regression as 'after a client closes without QUIT' above.
  test('an upload cut by the client disconnecting frees its reservation and its staging file', async () => {
    const server = await serve({ auth: { users: [q2.entry] } });
    const gone = await open(server.port);
    expect(await gone.auth(q2.token)).toBe('OK auth q2 write');
    await gone.send(Buffer.concat([Buffer.from('UPLOAD 60000\ngone.bin\n'), randomBytes(30_000)]));
    expect(await gone.line()).toBe('OK file recv');
    gone.destroy();
    await gone.closed;
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 'the staging file to be deleted', 2000);
    const next = await open(server.port);
    expect(await next.auth(q2.token)).toBe('OK auth q2 write');
    expect(await next.upload('fits-again.bin', randomBytes(90_000))).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 90000 /)]);
  });

  test('the kept part of an interrupted large upload counts until it is resumed (and survives a new ledger)', async () => {
    const MiB = 1024 * 1024;
    const q3 = await makeUser('q3', 'write', 'q3', 3 * MiB);
    const server = await serve({ auth: { users: [q3.entry] } });
    const data = randomBytes(2.5 * MiB);
    const gone = await open(server.port);
    expect(await gone.auth(q3.token)).toBe('OK auth q3 write');
    await gone.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nbig.bin\n`), data.subarray(0, 2 * MiB)]));
    expect(await gone.line()).toBe('OK file recv');
    await eventually(async () => {
      const [kept] = await stagingFiles(server.root);
      return kept !== undefined && (await stat(join(server.root, kept))).size === 2 * MiB;
    }, 'the sent bytes to be kept', 5000);
    gone.destroy();
    await gone.closed;

    const next = await open(server.port);
    expect(await next.auth(q3.token)).toBe('OK auth q3 write');
    await eventually(async () => {
      await next.send('RESUME\nbig.bin\n');
      return (await next.line()).startsWith('OK partial');
    }, 'the partial upload to be released', 5000);
    // 2 MiB kept + 1.5 MiB new > 3 MiB.
    expect(await next.upload('other.bin', randomBytes(1.5 * MiB))).toEqual([expect.stringMatching(/^ERR QUOTA_EXCEEDED /)]);
    await next.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length} FROM ${2 * MiB} ${sha256(data.subarray(0, 2 * MiB))}\nbig.bin\n`), data.subarray(2 * MiB), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect([await next.line(), await next.line()]).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`]);
    expect(await userFiles(server.root)).toEqual(['q3/big.bin']);
    expect(await next.upload('small.bin', randomBytes(0.5 * MiB))).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /)]);
    expect(await next.upload('one-more.bin', randomBytes(1))).toEqual([expect.stringMatching(/^ERR QUOTA_EXCEEDED /)]);
  });
});

describe('per-user transfer limit (maxTransfersPerUser 2)', () => {
  test('a third concurrent transfer of the same user is ERR BUSY; another user is not affected; finishing one frees a slot', async () => {
    const [busy, other] = await Promise.all([makeUser('busy', 'write', 'busy'), makeUser('other', 'write', 'other')]);
    const server = await serve({ limits: { maxTransfersPerUser: 2 }, auth: { users: [busy.entry, other.entry] } });
    const data = randomBytes(1000);
    const conns: Wire[] = [];
    for (let i = 0; i < 3; i++) {
      const wire = await open(server.port);
      expect(await wire.auth(busy.token)).toBe('OK auth busy write');
      await wire.send(Buffer.concat([Buffer.from(`UPLOAD 1000\nf${i}.bin\n`), data.subarray(0, 10)]));
      conns.push(wire);
      if (i < 2) expect(await wire.line()).toBe('OK file recv');
    }
    expect(await conns[2]!.line()).toMatch(/^ERR BUSY /);
    // The refused upload's data is still owed; once sent, the connection is in step again.
    await conns[2]!.send(Buffer.concat([data.subarray(10), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    // Another user has slots of their own.
    const stranger = await open(server.port);
    expect(await stranger.auth(other.token)).toBe('OK auth other write');
    expect(await stranger.upload('x.bin', data)).toEqual(['OK file recv', `OK file data recv 1000 ${sha256(data)}`]);
    // Finish one: its slot is free again.
    await conns[0]!.send(Buffer.concat([data.subarray(10), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await conns[0]!.line()).toBe(`OK file data recv 1000 ${sha256(data)}`);
    await eventually(async () => {
      const reply = await conns[2]!.upload('f2.bin', data);
      return reply[0] === 'OK file recv' && reply[1] === `OK file data recv 1000 ${sha256(data)}`;
    }, 'a free transfer slot');
    // f1 is still in progress (its staging file is there); f0 and f2 are stored.
    expect((await userFiles(join(server.root, 'busy'))).filter((path) => !path.startsWith('.rxfer-part-'))).toEqual(['f0.bin', 'f2.bin']);
  });
});

describe('size limits', () => {
  test('maxFileBytes: a declared size over the limit is ERR TOO_LARGE before any data; the connection stays usable', async () => {
    const server = await serve({ limits: { maxFileBytes: 1000 }, auth: { anonymous: 'write' } });
    const wire = await open(server.port);
    expect(await wire.upload('big.bin', randomBytes(1001))).toEqual([expect.stringMatching(/^ERR TOO_LARGE /)]);
    expect(await wire.upload('huge.bin', randomBytes(1001), 'ADDFILE')).toEqual([expect.stringMatching(/^ERR TOO_LARGE /)]);
    const ok = randomBytes(1000);
    expect(await wire.upload('ok.bin', ok)).toEqual(['OK file recv', `OK file data recv 1000 ${sha256(ok)}`]);
    expect(await userFiles(server.root)).toEqual(['ok.bin']);
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('maxLineBytes: a command line or a name line over the limit is ERR LINE_TOO_LONG, and the server closes', async () => {
    const server = await serve({ limits: { maxLineBytes: 256 }, auth: { anonymous: 'write' } });
    const command = await open(server.port);
    expect(command.greeting).toMatch(/\bmax-line=256\b/);
    await command.send(`UPLOAD ${'9'.repeat(300)}\n`);
    expect(await command.line()).toMatch(/^ERR LINE_TOO_LONG /);
    expect((await command.serverClosed()).toString()).toBe('');

    const name = await open(server.port);
    await name.send(uploadBytes('n'.repeat(300), 'data'));
    expect(await name.line()).toMatch(/^ERR LINE_TOO_LONG /);
    expect((await name.serverClosed()).toString()).toBe('');

    // A line that never ends is cut as soon as it passes the limit, without waiting for its newline.
    const endless = await open(server.port);
    await endless.send('A'.repeat(10_000));
    expect(await endless.line()).toMatch(/^ERR LINE_TOO_LONG /);
    expect((await endless.serverClosed()).toString()).toBe('');

    // Exactly at the limit (newline included) is fine.
    const edge = await open(server.port);
    const longest = 'e'.repeat(255);
    expect(await edge.upload(longest, 'x')).toEqual(['OK file recv', `OK file data recv 1 ${sha256('x')}`]);
    expect(await userFiles(server.root)).toEqual([longest]);
  });
});
