import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RxferConfigInput } from '../../src/config/config.schema';
import { parseConfig } from '../../src/config/load-config';
import { TOKENS } from '../../src/container/tokens';
import { TcpTransport } from '../../src/transport/tcp.transport';
import { TlsTransport } from '../../src/transport/tls.transport';
import type { Listener, Transport } from '../../src/transport/transport';
import { startServer } from '../../src/server/start-server';
import { captureLogs } from '../helpers/server';
import { RawClient } from '../helpers/raw-client';
import { makeCert, makeUser } from '../security/support/server';

/**
 * Promise (README, security): a server reachable beyond this machine says so when it is exposed:
 * plain TCP with tokens on (tokens and data in the clear), and anonymous access on. On loopback it
 * stays quiet. Tests never bind beyond loopback (house rule), so the real transport is wrapped: it
 * listens on 127.0.0.1 and reports the configured host as the address it is bound to, which is
 * what the server judges (its `listen()` result). Real server, real socket, real log lines.
 */
class ReportsConfiguredHost implements Transport {
  constructor(private readonly real: Transport) {}
  get kind(): string {
    return this.real.kind;
  }
  async listen(host: string, port: number): Promise<Listener> {
    const listener = await this.real.listen('127.0.0.1', port);
    return { connection$: listener.connection$, close: () => listener.close(), address: { ...listener.address, address: host, family: host.includes(':') ? 'IPv6' : 'IPv4' } };
  }
}

const PLAIN_WITH_TOKENS = /in plain TCP with authentication on: tokens and data cross the network unencrypted; configure server\.tls/;
const ANONYMOUS = /^Anonymous (read|write) access is on while listening on /;

const warningsOf = async (host: string, settings: Pick<RxferConfigInput, 'auth'> & { tls?: boolean }): Promise<string[]> => {
  const tmp = await mkdtemp(join(tmpdir(), 'rxfer-exposure-'));
  const tls = settings.tls ? await makeCert(tmp) : undefined;
  const config = parseConfig({
    server: { host, port: 0, shutdownGraceMs: 0, ...(tls && { tls: { cert: tls.certPath, key: tls.keyPath } }) },
    storage: { kind: 'local', root: tmp },
    auth: settings.auth,
    log: { level: 'info' },
  });
  const logs = captureLogs();
  const running = await startServer(config, {
    logger: logs.logger,
    customize: (container) =>
      container
        .rebind(TOKENS.Transport)
        .toResolvedValue((tcp: TcpTransport, secure: TlsTransport) => new ReportsConfiguredHost(tls ? secure : tcp), [TcpTransport, TlsTransport])
        .inSingletonScope(),
  });
  try {
    if (!tls) {
      // The server behind the stand-in address is the real one: it answers on loopback.
      const client = await RawClient.connect(running.port);
      expect(client.greeting).toMatch(/^OK rxfer\/1 /);
      client.destroy();
    }
    expect(logs.messages()).toContainEqual(`Server listening on ${host} port ${running.port}`);
    return logs.lines.filter((line) => line.level === 40).map((line) => line.msg);
  } finally {
    await running.close();
    await rm(tmp, { recursive: true, force: true });
  }
};

describe('the server warns when it is reachable beyond loopback', () => {
  let tokenHash: string;
  beforeAll(async () => (tokenHash = (await makeUser('alice', 'write', 'alice')).entry.tokenHash));
  const users = () => [{ name: 'alice', role: 'write' as const, root: 'alice', tokenHash }];

  it.each(['0.0.0.0', '::', '192.0.2.10'])('plain TCP with tokens on %s: one warning, naming the address', async (host) => {
    const warnings = await warningsOf(host, { auth: { users: users(), anonymous: 'none' } });
    expect(warnings).toEqual([`Listening on ${host} in plain TCP with authentication on: tokens and data cross the network unencrypted; configure server.tls`]);
  });

  it.each([
    ['write', '0.0.0.0'],
    ['read', '::'],
  ] as const)('anonymous %s on %s: a warning saying what anyone can do', async (anonymous, host) => {
    const warnings = await warningsOf(host, { auth: { users: [], anonymous } });
    expect(warnings).toEqual([`Anonymous ${anonymous} access is on while listening on ${host}: anyone who can reach this port can ${anonymous} files`]);
  });

  it('tokens and anonymous write on 0.0.0.0 in plain TCP: both warnings', async () => {
    const warnings = await warningsOf('0.0.0.0', { auth: { users: users(), anonymous: 'write' } });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(PLAIN_WITH_TOKENS);
    expect(warnings[1]).toMatch(ANONYMOUS);
  });

  it('TLS with tokens on 0.0.0.0: no warning (the tokens are encrypted)', async () => {
    expect(await warningsOf('0.0.0.0', { auth: { users: users(), anonymous: 'none' }, tls: true })).toEqual([]);
  });

  it('TLS with anonymous write on ::: still warned (encryption does not stop anyone writing)', async () => {
    const warnings = await warningsOf('::', { auth: { users: [], anonymous: 'write' }, tls: true });
    expect(warnings).toEqual([expect.stringMatching(ANONYMOUS)]);
  });

  it.each(['127.0.0.1', '::1', '127.0.0.2', 'localhost', '::ffff:127.0.0.1'])('on loopback (%s), tokens and anonymous write in plain TCP: no warning', async (host) => {
    expect(await warningsOf(host, { auth: { users: users(), anonymous: 'write' } })).toEqual([]);
  });
});
