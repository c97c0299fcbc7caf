import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, PROJECT, ensureBuilt, rxfer } from '../helpers/cli';
import { canRunServerProcesses } from '../reliability/support/scripts';

/**
 * Issue 17, "client and server RSS stay bounded": a server's RSS grew with every small file
 * uploaded (626–714 MiB after 200,000) and its stop took minutes. Heap snapshots of the server
 * during and after 20,000 uploads showed no structure growing with the files (≈ 16 MiB live,
 * digest logs, locks, partials and the commit worker's queue included): the growth was its log.
 * Writes to stdout are asynchronous and their buffer had no bound, so whatever the reader had not
 * taken yet (≈ 1 KB a small upload: command, stored and audit lines) piled up in the heap, and the
 * stopped process waited for the reader to take all of it before it could exit.
 *
 * Here stdout is a pipe that is never read while files go up, the harshest reader. The measure is
 * the server's heapUsed after two full collections (scripts/server-probe.js, inside the process),
 * after 5,000 and after 13,000 uploads: the log buffer is full long before 6,000, so a bounded
 * buffer adds nothing between the two, where the old code added every line (≈ 980 bytes a file,
 * ≈ 7.5 MiB; measured on the old code: 982). The bound (300 bytes a file, 2.3 MiB) is far above collector noise (< 1 MiB here) and far
 * below the old growth. Then SIGTERM with stdout still unread: the old process never exited (its
 * writes to the full pipe were retried for ever); now it gives the buffered lines a few seconds
 * and exits 0. The wait is a failure guard, not a timing goal.
 */
const FIRST = 5000;
const THEN = 8000;
const MAX_GROWTH_PER_FILE = 300;
const PROBE = join(PROJECT, 'scripts', 'server-probe.js');
const describeIfProc = canRunServerProcesses() ? describe : describe.skip;

const writeTree = (dir: string, from: number, count: number): void => {
  for (let i = from; i < from + count; i++) {
    const folder = join(dir, `d${Math.floor(i / 1000)}`);
    if (i === from || i % 1000 === 0) mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `f${i}.bin`), Buffer.alloc(1024, i % 251));
  }
};

describeIfProc('issue 17: a server whose stdout is read slowly stays bounded and stops', () => {
  let base: string;
  let server: ChildProcess;
  let port: string;
  let nextProbe = 0;

  const heapUsedAfterGc = () =>
    new Promise<number>((resolve) => {
      const id = ++nextProbe;
      const onMessage = (message: { id: number; heapUsed: number }) => {
        if (message.id !== id) return;
        server.off('message', onMessage);
        resolve(message.heapUsed);
      };
      server.on('message', onMessage);
      server.send({ id, gc: true });
    });

  const put = async (from: number, count: number, remote: string) => {
    const src = join(base, `src-${from}`);
    writeTree(src, from, count);
    const result = await rxfer(['put', '-r', src, remote, '-p', port, '-q']);
    expect(result.code).toBe(0);
  };

  beforeAll(() => ensureBuilt(), 240_000);
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-issue17-growth-'));
    const root = join(base, 'root');
    mkdirSync(root);
    const config = join(base, 'server.json');
    writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, storage: { kind: 'local', root }, log: { level: 'info' } }));
    server = spawn(process.execPath, ['--expose-gc', '--no-concurrent-sweeping', '-r', PROBE, BIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    port = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        const m = /"port":(\d+)/.exec(seen);
        if (!m) return;
        server.stdout!.off('data', onData);
        // From here on nobody reads the server's stdout (until it has stopped).
        server.stdout!.pause();
        resolve(m[1]!);
      };
      server.stdout!.on('data', onData);
      server.once('exit', () => reject(new Error(`serve exited: ${seen}`)));
    });
  }, 30_000);
  afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    server?.stdout?.resume();
    await rm(base, { recursive: true, force: true });
  });

  test(`heap after gc grows by < ${MAX_GROWTH_PER_FILE} bytes a file from ${FIRST} to ${FIRST + THEN} small uploads (stdout unread)`, async () => {
    await put(0, FIRST, 'a');
    const before = await heapUsedAfterGc();
    await put(FIRST, THEN, 'b');
    const after = await heapUsedAfterGc();
    expect((after - before) / THEN).toBeLessThan(MAX_GROWTH_PER_FILE);
  }, 90_000);

  test('SIGTERM with stdout still unread: the server exits 0 (it waited for the reader for ever)', async () => {
    // stdout is still not read: the stop must not wait for it.
    const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    server.kill('SIGTERM');
    const guard = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 30_000).unref());
    expect(await Promise.race([exited, guard])).toBe(0);
  }, 40_000);

  test('lines beyond the bound are dropped and counted in a warning, not held', async () => {
    // 10,000 lines of ≈ 1 KB logged in one turn of the event loop, faster than any reader: the
    // reader gets the bound's worth, then (a second later, the buffer drained) a warning with the
    // count of the rest. The old code held all 10 MB and wrote every line.
    const child = spawn(
      process.execPath,
      ['-e', `const log = require(${JSON.stringify(join(PROJECT, 'dist', 'logging', 'logger.js'))}).createLogger('info'); const pad = 'x'.repeat(900); for (let i = 0; i < 10000; i++) log.info({ i, pad }, 'line'); setTimeout(() => undefined, 2000);`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = Buffer.concat(chunks).toString().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string; dropped?: number });
    expect(code).toBe(0);
    const written = lines.filter((line) => line.msg === 'line').length;
    const warning = lines.find((line) => line.dropped !== undefined);
    expect(written).toBeGreaterThan(1000);
    expect(written).toBeLessThan(10_000);
    expect(warning?.dropped).toBe(10_000 - written);
  }, 20_000);
});
