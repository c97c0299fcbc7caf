import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { BIN, CliResult, ensureBuilt, rxfer } from '../helpers/cli';
import { SecureServer, TestCert, TestUser, makeBase, makeCert, makeUser, startSecureServer } from '../security/support/server';

/**
 * Promise (README, CLI): `--tls` connects with TLS and verifies the server's certificate, `--ca`
 * trusts a CA instead of the system's (and implies --tls), `--token` or `RXFER_TOKEN` authenticates,
 * the flag before the variable; a wrong token is `AUTH_FAILED`, exit 1; and a token never appears
 * in anything the CLI prints. A real TLS server with a throw-away certificate and a real user;
 * the CLI as users run it (dist/, a fresh process each). Runs dist/: no mutant of src/ reaches it
 * (left out of jest.stryker.config.ts).
 */
let server: SecureServer;
let base: string;
let cert: TestCert;
let alice: TestUser;
let work: string;
const outputs: CliResult[] = [];

/** The CLI against the TLS server, its output kept for the "no token printed" check. */
const run = async (args: string[], env: Record<string, string> = {}): Promise<CliResult> => {
  const result = await rxfer([...args, '-p', String(server.port)], { env: { RXFER_TOKEN: '', ...env }, cwd: work });
  outputs.push(result);
  return result;
};

beforeAll(async () => {
  ensureBuilt();
  base = await makeBase('rxfer-cli-tls-token-');
  cert = await makeCert(join(base, 'tls'));
  alice = await makeUser('alice', 'write', 'alice');
  server = await startSecureServer({ server: { tls: { cert: cert.certPath, key: cert.keyPath } }, auth: { users: [alice.entry], anonymous: 'none' } });
  work = join(base, 'work');
  await mkdir(work);
}, 120_000);
afterAll(async () => {
  await server.close();
  await rm(base, { recursive: true, force: true });
});

/**
 * bin/rxfer.js as users run it (through sh: it decides whether NODE_EXTRA_CA_CERTS reaches node), with
 * alice's token and `extraCa` as NODE_EXTRA_CA_CERTS. Not spawnSync: the server runs in this process.
 */
const asInstalled = (args: string[], extraCa: string): Promise<{ code: number; stderr: string }> =>
  new Promise((resolve) => {
    const env = { ...process.env, RXFER_TOKEN: alice.token, NODE_EXTRA_CA_CERTS: extraCa };
    execFile(BIN, [...args, '-q', '-p', String(server.port)], { cwd: work, env }, (err, _stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }));
  });

describe('the CLI over TLS with a token', () => {
  test('RXFER_TOKEN with --tls --ca: put and get byte for byte, into the user’s own root', async () => {
    const data = randomBytes(300 * 1024);
    await writeFile(join(work, 'env.bin'), data);
    const put = await run(['put', 'env.bin', 'env.bin', '--tls', '--ca', cert.certPath, '-q'], { RXFER_TOKEN: alice.token });
    expect(put).toMatchObject({ code: 0, stderr: '' });
    expect((await readFile(join(server.root, 'alice', 'env.bin'))).equals(data)).toBe(true);
    const get = await run(['get', 'env.bin', 'back.bin', '--tls', '--ca', cert.certPath, '-q'], { RXFER_TOKEN: alice.token });
    expect(get).toMatchObject({ code: 0, stderr: '' });
    expect((await readFile(join(work, 'back.bin'))).equals(data)).toBe(true);
  });

  test('--tls trusts the CAs of NODE_EXTRA_CA_CERTS, run as users run it (bin/rxfer.js through sh, which keeps the variable for TLS)', async () => {
    await writeFile(join(work, 'extra.txt'), 'trusted by NODE_EXTRA_CA_CERTS\n');
    const asUser = (args: string[], extraCa: string) => asInstalled([...args, '--tls'], extraCa);
    expect(await asUser(['put', 'extra.txt', 'extra.txt'], cert.certPath)).toEqual({ code: 0, stderr: '' });
    expect(await readFile(join(server.root, 'alice', 'extra.txt'), 'utf8')).toBe('trusted by NODE_EXTRA_CA_CERTS\n');
    // Without it, the same certificate is refused: the trust came from the variable.
    const refused = await asUser(['ls'], '');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/certificate/i);
  });

  test('--ca trusts its file instead of the default CAs (as Node\'s ca option does): a CA only in NODE_EXTRA_CA_CERTS is not trusted beside it', async () => {
    const other = await makeCert(join(base, 'other-ca'));
    await writeFile(join(work, 'instead.txt'), 'instead\n');
    const refused = await asInstalled(['put', 'instead.txt', 'instead.txt', '--ca', other.certPath], cert.certPath);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/certificate/i);
    expect(await readFile(join(server.root, 'alice', 'instead.txt'), 'utf8').catch(() => undefined)).toBeUndefined();
  });

  test('--token on the command line, and --ca alone implies --tls', async () => {
    await writeFile(join(work, 'flag.txt'), 'by flag\n');
    const put = await run(['put', 'flag.txt', 'flag.txt', '--ca', cert.certPath, '--token', alice.token, '-q']);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    expect(await readFile(join(server.root, 'alice', 'flag.txt'), 'utf8')).toBe('by flag\n');
  });

  test('RXFER_CA and RXFER_TLS work as the flags do', async () => {
    const ls = await run(['ls', '--json'], { RXFER_TOKEN: alice.token, RXFER_TLS: '1', RXFER_CA: cert.certPath });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('flag.txt');
  });

  test('the flag wins over the variable: a wrong RXFER_TOKEN with the right --token works, and the other way fails', async () => {
    const flagRight = await run(['ls', '--tls', '--ca', cert.certPath, '--token', alice.token], { RXFER_TOKEN: 'alice.wrongwrongwrongwrongwrongwrong' });
    expect(flagRight.code).toBe(0);
    const flagWrong = await run(['ls', '--tls', '--ca', cert.certPath, '--token', 'alice.wrongwrongwrongwrongwrongwrong'], { RXFER_TOKEN: alice.token });
    expect(flagWrong.code).toBe(1);
    expect(flagWrong.stderr).toMatch(/^rxfer: ERR AUTH_FAILED /);
  });

  test('a wrong token: AUTH_FAILED, exit 1, nothing stored; as --json too', async () => {
    const wrong = `${alice.token.slice(0, -4)}AAAA`;
    await writeFile(join(work, 'denied.txt'), 'must not arrive\n');
    const put = await run(['put', 'denied.txt', 'denied.txt', '--tls', '--ca', cert.certPath], { RXFER_TOKEN: wrong });
    expect(put.code).toBe(1);
    expect(put.stderr).toMatch(/^rxfer: ERR AUTH_FAILED /);
    await expect(readFile(join(server.root, 'alice', 'denied.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    const json = await run(['ls', '--tls', '--ca', cert.certPath, '--json'], { RXFER_TOKEN: wrong });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({ code: 'AUTH_FAILED', exit: 1 });
    expect(`${put.stdout}${put.stderr}${json.stdout}${json.stderr}`).not.toContain(wrong);
  });

  test('no token where the server wants one: refused, nothing listed', async () => {
    const ls = await run(['ls', '--tls', '--ca', cert.certPath]);
    expect(ls.code).toBe(1);
    expect(ls.stdout).toBe('');
    expect(ls.stderr).toMatch(/^rxfer: ERR (AUTH_FAILED|AUTH_REQUIRED|FORBIDDEN) /);
  });

  test('--tls without --ca: the self-signed certificate is not trusted, nothing listed', async () => {
    const ls = await run(['ls', '--tls'], { RXFER_TOKEN: alice.token });
    expect(ls.code).toBe(1);
    expect(ls.stdout).toBe('');
    expect(ls.stderr).toMatch(/certificate/i);
  });

  test('no output of any run above holds the token or its secret part', () => {
    expect(outputs.length).toBeGreaterThanOrEqual(9);
    const secret = alice.token.slice(alice.token.lastIndexOf('.') + 1);
    expect(secret.length).toBeGreaterThanOrEqual(16);
    for (const { stdout, stderr } of outputs) {
      expect(stdout).not.toContain(secret);
      expect(stderr).not.toContain(secret);
    }
  });
});
