import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { RxferClient } from '../../src/client';
import { RxferError } from '../../src/errors/rxfer-error';
import { SecureServer, TestCert, TestUser, makeBase, makeCert, makeUser, serverSockets, startSecureServer, userFiles } from './support/server';
import { GUARD_MS, Wire, destroyAll, eventually, sha256 } from './support/wire';

let alice: TestUser;
let reader: TestUser;
let cert: TestCert;
let server: SecureServer;
const wires: Wire[] = [];
const tempDirs: string[] = [];

const tlsWire = async (port: number, options: Parameters<typeof Wire.open>[1] = {}) => {
  const wire = await Wire.open(port, { ...options, tls: { ca: cert.pem, ...options.tls } });
  wires.push(wire);
  return wire;
};

const tlsServer = async (extra: Parameters<typeof startSecureServer>[0] = {}, certificate = cert): Promise<SecureServer> => {
  const base = await makeBase();
  return startSecureServer(
    {
      ...extra,
      server: { tls: { cert: certificate.certPath, key: certificate.keyPath }, ...extra.server },
      auth: { users: [alice.entry, reader.entry], ...extra.auth },
    },
    base,
  );
};

beforeAll(async () => {
  [alice, reader] = await Promise.all([makeUser('alice', 'write', 'alice'), makeUser('reader', 'read', 'alice')]);
  const base = await makeBase('rxfer-sec-tls-');
  tempDirs.push(base);
  cert = await makeCert(join(base, 'tls'));
  server = await tlsServer();
});
afterEach(() => destroyAll(wires));
afterAll(async () => {
  await server.close();
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

test('the client library with the CA and a token round-trips a file over TLS', async () => {
  const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, tls: { ca: cert.pem }, token: alice.token });
  const data = randomBytes(1024 * 1024 + 17);
  expect(await client.uploadBuffer('over-tls.bin', data)).toEqual({ size: data.length, digest: sha256(data) });
  const back = await client.downloadBuffer('over-tls.bin');
  expect(back.data.equals(data)).toBe(true);
  await client.quit();
  expect((await readFile(join(server.root, 'alice', 'over-tls.bin'))).equals(data)).toBe(true);
});

test('TLS 1.3 is negotiated when the client offers it, and the greeting comes over TLS', async () => {
  const wire = await tlsWire(server.port);
  expect((wire.socket as import('node:tls').TLSSocket).getProtocol()).toBe('TLSv1.3');
  expect((wire.socket as import('node:tls').TLSSocket).authorized).toBe(true);
  expect(wire.greeting).toMatch(/^OK rxfer\/1 .*\bauth=required\b/);
});

test('a TLS 1.2 client is served (minVersion TLSv1.2); a TLS 1.1 client fails the handshake', async () => {
  const twelve = await tlsWire(server.port, { tls: { maxVersion: 'TLSv1.2' } });
  expect((twelve.socket as import('node:tls').TLSSocket).getProtocol()).toBe('TLSv1.2');
  expect(twelve.greeting).toMatch(/^OK rxfer\/1 /);
  await expect(Wire.open(server.port, { tls: { ca: cert.pem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' } })).rejects.toThrow(
    /protocol|version|alert|handshake|ECONNRESET|socket disconnected/i,
  );
});

test('with server.tls.minVersion TLSv1.3 a TLS 1.2 client fails the handshake', async () => {
  const strict = await tlsServer({ server: { tls: { cert: cert.certPath, key: cert.keyPath, minVersion: 'TLSv1.3' } } });
  try {
    await expect(Wire.open(strict.port, { tls: { ca: cert.pem, maxVersion: 'TLSv1.2' } })).rejects.toThrow(/protocol|version|alert|handshake|ECONNRESET|socket disconnected/i);
    const ok = await tlsWire(strict.port);
    expect((ok.socket as import('node:tls').TLSSocket).getProtocol()).toBe('TLSv1.3');
  } finally {
    await strict.close();
  }
});

test('a plain-TCP client on the TLS port never gets a greeting (nor any rxfer reply)', async () => {
  const socket = connectTcp({ host: '127.0.0.1', port: server.port });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  // Plain protocol bytes are not a TLS ClientHello: the server drops the connection.
  socket.write('QUIT\nUPLOAD 5\nplain.txt\nhello');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the TLS port kept a plain-TCP connection open')), GUARD_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const text = Buffer.concat(received).toString('latin1');
  expect(text).not.toContain('rxfer');
  expect(text).not.toMatch(/^(OK|ERR)/m);
  expect(await userFiles(server.root)).not.toContain('plain.txt');
  // And the client library, speaking plain TCP to it, gives up instead of hanging.
  const failure = await RxferClient.connect({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 1000 }).catch((err: unknown) => err);
  expect((failure as RxferError).code).toBe('CONNECTION_LOST');
});

test('a client without the CA fails the handshake: CONNECTION_LOST with a certificate error', async () => {
  const failure = await RxferClient.connect({ host: '127.0.0.1', port: server.port, tls: {}, token: alice.token }).catch((err: unknown) => err);
  expect(failure).toBeInstanceOf(RxferError);
  expect((failure as RxferError).code).toBe('CONNECTION_LOST');
  expect((failure as RxferError).message).toMatch(/SELF_SIGNED|self.signed|UNABLE_TO_VERIFY|unable to verify/i);
});

test('a certificate for another host name is refused by the client', async () => {
  const base = await makeBase('rxfer-sec-tls-other-');
  tempDirs.push(base);
  const dir = join(base, 'other');
  execFileSync('mkdir', ['-p', dir]);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=other.example', '-addext', 'subjectAltName=DNS:other.example'],
    { stdio: 'pipe' },
  );
  const other: TestCert = { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), pem: await readFile(join(dir, 'cert.pem'), 'utf8') };
  const mismatched = await tlsServer({}, other);
  try {
    const failure = await RxferClient.connect({ host: '127.0.0.1', port: mismatched.port, tls: { ca: other.pem } }).catch((err: unknown) => err);
    expect((failure as RxferError).code).toBe('CONNECTION_LOST');
    expect((failure as RxferError).message).toMatch(/ALTNAME|altname|does not match|IP: 127\.0\.0\.1/i);
  } finally {
    await mismatched.close();
  }
});

test('over TLS: a wrong token is ERR AUTH_FAILED and the connection closes', async () => {
  const wire = await tlsWire(server.port);
  expect(await wire.auth(`alice.${'x'.repeat(43)}`)).toBe('ERR AUTH_FAILED unknown user or wrong token');
  expect((await wire.serverClosed()).toString()).toBe('');
  const failure = await RxferClient.connect({ host: '127.0.0.1', port: server.port, tls: { ca: cert.pem }, token: `reader.${'y'.repeat(43)}` }).catch((err: unknown) => err);
  expect((failure as RxferError).code).toBe('AUTH_FAILED');
});

test('over TLS: a read-only user gets ERR FORBIDDEN for UPLOAD, nothing is written, DOWNLOAD works', async () => {
  await writeFile(join(server.root, 'alice', 'shared.txt'), 'readable\n');
  const before = await userFiles(server.root);
  const wire = await tlsWire(server.port);
  expect(await wire.auth(reader.token)).toBe('OK auth reader read');
  expect(await wire.upload('shared.txt', 'overwritten\n')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
  expect(await wire.upload('new.txt', 'new\n')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
  expect((await wire.download('shared.txt')).data?.toString()).toBe('readable\n');
  expect(await userFiles(server.root)).toEqual(before);
});

test('over TLS: beyond maxConnections the extra client gets ERR TOO_MANY_CONNECTIONS; after a QUIT a new one is accepted', async () => {
  const small = await tlsServer({ server: { tls: { cert: cert.certPath, key: cert.keyPath }, maxConnections: 2 } });
  try {
    const first = await tlsWire(small.port);
    await tlsWire(small.port);
    const extra = await tlsWire(small.port, { readGreeting: false });
    expect(await extra.line()).toMatch(/^ERR TOO_MANY_CONNECTIONS /);
    expect((await extra.serverClosed()).toString()).toBe('');
    await first.send('QUIT\n');
    expect(await first.line()).toBe('OK bye');
    await first.serverClosed();
    const next = await tlsWire(small.port);
    expect(next.greeting).toMatch(/^OK rxfer\/1 /);
    expect(await next.auth(alice.token)).toBe('OK auth alice write');
  } finally {
    destroyAll(wires);
    await small.close();
  }
});

test('peers that abandon the TLS handshake are dropped by the server (handshake timeout = idle timeout, 1 s)', async () => {
  const quick = await tlsServer({ limits: { idleTimeoutMs: 1000 } });
  try {
    const silent = connectTcp({ host: '127.0.0.1', port: quick.port });
    const halfClosed = connectTcp({ host: '127.0.0.1', port: quick.port }, () => halfClosed.end());
    for (const socket of [silent, halfClosed]) socket.on('error', () => undefined);
    const noCa = await RxferClient.connect({ host: '127.0.0.1', port: quick.port, tls: {} }).catch((err: unknown) => err);
    expect((noCa as RxferError).code).toBe('CONNECTION_LOST');
    await eventually(() => serverSockets(quick.port).length === 0, 'the server to close sockets that never finished a handshake', 5000);
    silent.destroy();
    halfClosed.destroy();
  } finally {
    await quick.close();
  }
});
