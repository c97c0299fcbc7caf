import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateToken, hashToken } from '../../src/auth/token';
import { ensureBuilt } from '../helpers/cli';
import { RawClient } from '../helpers/raw-client';
import { ManualUpload, ServeProcess, eventually, httpGet, sample, scrape } from './ops-support';

const MiB = 1024 * 1024;

jest.setTimeout(60_000);

// dist/ is rebuilt here when src/ is newer: that can take longer than a test's time.
beforeAll(() => ensureBuilt(), 180_000);

describe('rxfer serve as a service: drain, reload, audit', () => {
  let tmp: string;
  let root: string;
  let configPath: string;
  let serve: ServeProcess | undefined;
  const clients: RawClient[] = [];

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-ops-life-'));
    root = join(tmp, 'data');
    await mkdir(root);
    configPath = join(tmp, 'rxfer.json');
  });

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    serve?.kill();
    await serve?.exited;
    serve = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  const writeConfig = (extra: Record<string, unknown> = {}) =>
    writeFile(
      configPath,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 30_000 },
        storage: { kind: 'local', root },
        metrics: { host: '127.0.0.1', port: 0 },
        log: { format: 'json' },
        ...extra,
      }),
    );

  const connect = async (port: number) => {
    const client = await RawClient.connect(port);
    clients.push(client);
    return client;
  };

  test('SIGTERM: /readyz turns 503 at once, the transfer in flight still completes, then exit 0', async () => {
    await writeConfig();
    serve = ServeProcess.start(['--config', configPath]);
    const { port, metricsPort } = await serve.ports();
    expect((await httpGet(metricsPort, '/readyz')).status).toBe(200);

    const upload = new ManualUpload(await connect(port), 'drained.bin', 32 * MiB);
    await upload.begin();
    await upload.sendData(8 * MiB);
    await eventually('data counted', async () => ((sample(await scrape(metricsPort), 'rxfer_bytes_received_total') ?? 0) > 0 ? true : undefined));

    serve.child.kill('SIGTERM');
    const ready = await eventually('/readyz 503', async () => {
      const answer = await httpGet(metricsPort, '/readyz');
      return answer.status === 503 ? answer : undefined;
    });
    expect(ready.body).toBe('not ready: draining\n');
    // The listener stays up during the drain: Prometheus still sees the transfer finish.
    expect((await httpGet(metricsPort, '/metrics')).status).toBe(200);
    expect((await httpGet(metricsPort, '/healthz')).status).toBe(503);

    expect(await upload.finish()).toMatch(/^OK file data recv 33554432 [0-9a-f]{64}$/);
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });

  test('a second SIGTERM during the drain exits at once', async () => {
    await writeConfig();
    serve = ServeProcess.start(['--config', configPath]);
    const { port } = await serve.ports();
    const upload = new ManualUpload(await connect(port), 'cut.bin', 32 * MiB);
    await upload.begin();
    await upload.sendData(MiB);
    serve.child.kill('SIGTERM');
    await serve.waitFor('the drain line', (r) => String(r['msg']).startsWith('Received SIGTERM; draining'));
    serve.child.kill('SIGTERM');
    // With a 30 s grace, only the second signal can end it within the failure guard.
    expect(await serve.exited).toEqual({ code: 143, signal: null });
  });

  test('SIGHUP: a new user gets in, a running transfer goes on, a bad file is refused by key; every upload has a full audit line', async () => {
    const alice = generateToken('alice');
    const bob = generateToken('bob');
    const aliceUser = { name: 'alice', tokenHash: await hashToken(alice), root: '' };
    await writeConfig({ auth: { users: [aliceUser] } });
    serve = ServeProcess.start(['--config', configPath]);
    const { port, metricsPort } = await serve.ports();

    const first = await connect(port);
    await first.send(`AUTH ${alice}\n`);
    expect(await first.readLine()).toBe('OK auth alice write');
    const upload = new ManualUpload(first, 'during-reload.bin', 16 * MiB);
    await upload.begin();
    await upload.sendData(4 * MiB);

    const bobBefore = await connect(port);
    await bobBefore.send(`AUTH ${bob}\n`);
    expect(await bobBefore.readLine()).toMatch(/^ERR AUTH_FAILED/);

    await writeConfig({ auth: { users: [aliceUser, { name: 'bob', tokenHash: await hashToken(bob), root: '', role: 'read' }] }, limits: { maxTransfersPerUser: 8 } });
    serve.child.kill('SIGHUP');
    const reloaded = await serve.waitFor('the reload line', (r) => String(r['msg']).startsWith('SIGHUP: reloaded'));
    expect(reloaded['changed']).toEqual(expect.arrayContaining(['auth.users', 'limits.maxTransfersPerUser']));

    const bobAfter = await connect(port);
    await bobAfter.send(`AUTH ${bob}\n`);
    expect(await bobAfter.readLine()).toBe('OK auth bob read');

    // A file with a bad value changes nothing, and says which key is wrong.
    await writeFile(configPath, JSON.stringify({ storage: { kind: 'local', root }, limits: { maxLineBytes: 'big' } }));
    serve.child.kill('SIGHUP');
    const refused = await serve.waitFor('the refusal', (r) => String(r['msg']).startsWith('SIGHUP: reload refused'));
    expect(refused['msg']).toMatch(/limits\.maxLineBytes/);
    const bobStill = await connect(port);
    await bobStill.send(`AUTH ${bob}\n`);
    expect(await bobStill.readLine()).toBe('OK auth bob read');

    // The upload that was running all along completes.
    const done = await upload.finish();
    expect(done).toMatch(/^OK file data recv 16777216 [0-9a-f]{64}$/);
    const digest = done.split(' ').pop();

    const audit = await serve.waitFor('the upload audit line', (r) => r['audit'] === true && r['command'] === 'UPLOAD');
    expect(audit).toMatchObject({
      user: 'alice',
      remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      command: 'UPLOAD',
      file: 'during-reload.bin',
      bytes: 16 * MiB,
      durationMs: expect.any(Number),
      bytesPerSecond: expect.any(Number),
      digest,
      outcome: 'ok',
      code: null,
    });
    expect(audit['bytesPerSecond'] as number).toBeGreaterThan(0);
    const failedLogin = await serve.waitFor('the failed AUTH audit line', (r) => r['audit'] === true && r['command'] === 'AUTH' && r['outcome'] === 'error');
    expect(failedLogin['code']).toBe('AUTH_FAILED');
    expect(sample(await scrape(metricsPort), 'rxfer_auth_failures_total')).toBe(1);
    // Tokens (and their secret halves) never reach the log.
    const output = serve.lines.join('\n');
    for (const token of [alice, bob]) expect(output).not.toContain(token.split('.')[1]);
  });
});
