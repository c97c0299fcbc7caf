import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { AddressInfo, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { ensureBuilt, rxfer } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';
import { makeBase, makeCert } from '../security/support/server';

/**
 * Issue 19: every failure is said in words that tell what to do, with a stable code and exit
 * status, and with --json as one JSON object on stderr. Real servers, real sockets, fresh processes.
 */
let plain: TestServer;
let tls: TestServer;
let base: string;
const servers: Server[] = [];

beforeAll(async () => {
  ensureBuilt();
  base = await makeBase('rxfer-cli-errors-');
  const cert = await makeCert(join(base, 'tls'));
  [plain, tls] = await Promise.all([startTestServer(), startTestServer({ config: { server: { tls: { cert: cert.certPath, key: cert.keyPath } } } })]);
}, 120_000);
afterAll(async () => {
  for (const server of servers) server.close();
  await Promise.all([plain.close(), tls.close()]);
  await rm(base, { recursive: true, force: true });
});

/** A TCP server on 127.0.0.1 that is not rxfer: it greets every connection with `first` (or says nothing). */
const impostor = async (first?: Buffer): Promise<number> => {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    if (first) socket.write(first);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
};

const freePort = async (): Promise<number> => {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
};

describe('connecting to the wrong thing', () => {
  test('nothing listening: "could not connect … is `rxfer serve` running there?", exit 1; with --json one JSON object', async () => {
    const port = String(await freePort());
    const [text, json] = await Promise.all([rxfer(['ls', '-p', port]), rxfer(['ls', '-p', port, '--json'])]);
    expect(text.code).toBe(1);
    expect(text.stderr).toBe(`rxfer: ERR CONNECTION_LOST could not connect to 127.0.0.1:${port} — is \`rxfer serve\` running there? (connection refused)\n`);
    expect(json.code).toBe(1);
    expect(json.stdout).toBe('');
    expect(JSON.parse(json.stderr)).toEqual({
      code: 'CONNECTION_LOST',
      message: `could not connect to 127.0.0.1:${port} — is \`rxfer serve\` running there? (connection refused)`,
      exit: 1,
      detail: { host: '127.0.0.1', port: Number(port), reason: 'ECONNREFUSED' },
    });
  });

  test('a server that sends junk is "not an rxfer server" at once (a 60 s greeting timeout is not waited for)', async () => {
    const [junk, ssh] = await Promise.all([impostor(Buffer.from([0x00, 0xff, 0x13, 0x37])), impostor(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))]);
    const [a, b] = await Promise.all([rxfer(['get', 'x', '-p', String(junk), '--connect-timeout', '60']), rxfer(['ls', '-p', String(ssh), '--connect-timeout', '60'])]);
    expect(a.code).toBe(1);
    expect(a.stderr).toBe(`rxfer: ERR PROTOCOL_VIOLATION 127.0.0.1:${junk} is not an rxfer server (it answered "\\x00\\xff\\x137"): check the host and port\n`);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain(`127.0.0.1:${ssh} is not an rxfer server (it answered "SSH-2.0-OpenSSH_")`);
  }, 30_000);

  test('TLS on one side only: a TLS server without --tls says "add --tls"; --tls on a plain server says it does not speak TLS', async () => {
    const record = await impostor(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]));
    const [tlsServer, tlsRecord, tlsOnPlain] = await Promise.all([
      rxfer(['ls', '-p', String(tls.port), '--connect-timeout', '60']),
      rxfer(['ls', '-p', String(record), '--connect-timeout', '60']),
      rxfer(['ls', '-p', String(plain.port), '--tls']),
    ]);
    expect(tlsServer.code).toBe(1);
    expect(tlsServer.stderr).toBe(`rxfer: ERR PROTOCOL_VIOLATION 127.0.0.1:${tls.port} speaks TLS and sent no plain greeting: add --tls (or set RXFER_TLS=1)\n`);
    expect(tlsRecord.stderr).toBe(`rxfer: ERR PROTOCOL_VIOLATION 127.0.0.1:${record} answered with TLS, not plain rxfer: add --tls (or set RXFER_TLS=1)\n`);
    expect(tlsOnPlain.code).toBe(1);
    expect(tlsOnPlain.stderr).toBe(`rxfer: ERR CONNECTION_LOST 127.0.0.1:${plain.port} does not speak TLS (it answered in plain text): drop --tls, or check the port\n`);
  }, 30_000);

  test('a silent server: the greeting timeout (--connect-timeout) asks whether it is rxfer, or needs --tls', async () => {
    const silent = await impostor();
    const result = await rxfer(['ls', '-p', String(silent), '--connect-timeout', '1.5']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`rxfer: ERR CONNECTION_LOST 127.0.0.1:${silent} accepted the connection but sent no rxfer greeting: is it an rxfer server? (if it uses TLS, add --tls)\n`);
  }, 30_000);

  test('an unknown host is said in words (ENOTFOUND or, without DNS, EAI_AGAIN)', async () => {
    const result = await rxfer(['ls', '-H', 'no-such-host.invalid']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^rxfer: ERR CONNECTION_LOST could not connect to no-such-host\.invalid:9000: (no host named no-such-host\.invalid was found \(ENOTFOUND\)|the name no-such-host\.invalid could not be looked up now \(EAI_AGAIN\))/);
  }, 30_000);
});

describe('-H host:port', () => {
  test('HOST:PORT and [IPv6]:PORT are accepted; a port given twice, or a bad one, is a usage error (JSON with --json)', async () => {
    const [hostPort, ipv6, twice, bad] = await Promise.all([
      rxfer(['ls', '-H', `127.0.0.1:${plain.port}`]),
      rxfer(['ls', '-H', `[::1]:${await freePort()}`]),
      rxfer(['ls', '-H', `127.0.0.1:${plain.port}`, '-p', '9']),
      rxfer(['ls', '-H', '127.0.0.1:x', '--json']),
    ]);
    expect(hostPort).toEqual({ code: 0, stdout: '', stderr: '' });
    // Nothing listens on ::1 there: the refusal names the address as it was given.
    expect(ipv6.code).toBe(1);
    expect(ipv6.stderr).toMatch(/^rxfer: ERR CONNECTION_LOST could not connect to \[::1\]:\d+ /);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain(`the port is given twice: ${plain.port} in -H 127.0.0.1:${plain.port} and 9 in -p`);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr)).toEqual({ code: 'USAGE', message: expect.stringContaining('expected HOST:PORT with a port number from 1 to 65535'), exit: 2 });
  }, 30_000);
});

describe('local errors and help', () => {
  test('a missing local file is said in words, not as a bare ENOENT', async () => {
    const result = await rxfer(['put', join(base, 'missing.txt'), '-p', String(plain.port)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`rxfer: ERR LOCAL_IO cannot open for reading ${join(base, 'missing.txt')}: no such file or folder (ENOENT)\n`);
  });

  test('every client command has examples in its --help', async () => {
    const commands = ['put', 'add', 'get', 'ls', 'stat', 'mv', 'rm', 'mkdir'];
    const helps = await Promise.all(commands.map((command) => rxfer([command, '--help'])));
    helps.forEach((help, i) => {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('Examples:');
      expect(help.stdout).toContain(`$ rxfer ${commands[i]} `);
    });
  }, 30_000);
});
