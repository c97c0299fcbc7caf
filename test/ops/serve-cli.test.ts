import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, PROJECT, ensureBuilt, rxfer } from '../helpers/cli';
import { eventually, httpGet } from './ops-support';

jest.setTimeout(60_000);
beforeAll(() => ensureBuilt(), 180_000);

describe('rxfer serve: configuration mistakes are said in words and exit 2', () => {
  let tmp: string;
  let busy: Server;
  let busyPort: number;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-ops-cli-'));
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as { port: number }).port;
  });

  afterEach(async () => {
    await new Promise((resolve) => busy.close(resolve));
    await rm(tmp, { recursive: true, force: true });
  });

  test('a port another process holds', async () => {
    const result = await rxfer(['serve', '--host', '127.0.0.1', '--port', String(busyPort), '--root', join(tmp, 'data')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`rxfer: ERR CONFIG_INVALID server.port: 127.0.0.1 port ${busyPort} is already in use by another process; choose another port or stop that process\n`);
  });

  test('a metrics port another process holds (and the server does not stay up)', async () => {
    const result = await rxfer(['serve', '--port', '0', '--metrics-port', String(busyPort), '--root', join(tmp, 'data')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^rxfer: ERR CONFIG_INVALID metrics\\.port: 127\\.0\\.0\\.1 port ${busyPort} is already in use`));
  });

  test('a storage root that is a file', async () => {
    const file = join(tmp, 'not-a-folder');
    await writeFile(file, 'x');
    const result = await rxfer(['serve', '--port', '0', '--root', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`rxfer: ERR CONFIG_INVALID storage.root: ${file} is a file, not a folder; point --root (or storage.root) at a folder, or remove the file\n`);
  });
});

describe('rxfer serve on a terminal', () => {
  test('prints readable lines, not JSON, under a pty', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'rxfer-ops-tty-'));
    // script(1) gives the server a pseudo-terminal as stdout, as a person's shell would.
    const command = `exec '${process.execPath}' '${BIN}' serve --port 0 --metrics-port 0 --root '${join(tmp, 'data')}'`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: PROJECT, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const metricsPort = await eventually('the metrics line', () => /http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(output)?.[1]);
      expect(output).toMatch(/INFO.*Server listening on 127\.0\.0\.1 port \d+/);
      expect(output).not.toContain('{"level"');
      expect((await httpGet(Number(metricsPort), '/healthz')).status).toBe(200);
    } finally {
      // Ctrl-C, as the person would: the terminal's SIGINT reaches the server through the pty.
      child.stdin.write('\u0003');
      const code = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 15_000))]);
      if (code === 'running') child.kill('SIGKILL');
      await rm(tmp, { recursive: true, force: true });
    }
    expect(output).toMatch(/Received SIGINT; draining/);
    expect(output).toMatch(/Server stopped/);
  });
});
