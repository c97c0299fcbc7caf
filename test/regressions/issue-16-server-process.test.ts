import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeBase } from '../security/support/server';
import { type ServerProcess, startServerProcess as startServerProcessAt } from '../helpers/server-process';
import { GUARD_MS, Wire, destroyAll, eventually, sha256, sleep } from '../security/support/wire';
import { warmSmallReads } from '../helpers/warm-small-reads';
import { listRequest, readListAnswer, replySource } from '../helpers/raw-client';

/**
 * Issue 16 against the real server process (`node bin/rxfer.js serve`, built: `npm run build`): 16
 * hostile connections using every pattern of the issue at once (downloads never read, thousands of
 * pipelined downloads of big and of small files, a thousand LISTs of a 500-file folder then gone).
 * The server's memory stays ≤ 256 MiB, its descriptors come back and its CPU goes idle once they
 * leave, and a server stopped under 3,000 pipelined LISTs exits (before the fix it stayed at 100 %
 * CPU for minutes after logging "Server stopped"). No timing is asserted; waits are failure guards.
 */

const MiB = 1024 * 1024;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

const rssKiB = async (pid: number): Promise<number> => Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const openFds = async (pid: number): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length;
/** CPU seconds the process has used (user + system). */
const cpuSeconds = async (pid: number): Promise<number> => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
};

const startServerProcess = async (base: string): Promise<ServerProcess> => {
  const root = join(base, 'storage');
  const configPath = join(base, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0, maxConnections: 500, maxConnectionsPerIp: 500, shutdownGraceMs: 0 },
      storage: { kind: 'local', root },
      auth: { anonymous: 'write' },
      log: { level: 'info' },
    }),
  );
  return startServerProcessAt(configPath, GUARD_MS);
};

const skipUnlessBuilt = existsSync(join(__dirname, '..', '..', 'dist', 'cli', 'main.js')) && existsSync('/proc/self/status') ? describe : describe.skip;

skipUnlessBuilt('issue 16: one server process against 16 hostile connections', () => {
  let base: string;
  let server: ServerProcess | undefined;
  const wires: Wire[] = [];

  beforeAll(async () => {
    base = await makeBase('rxfer-issue16-');
    const root = join(base, 'storage');
    await mkdir(join(root, 'dfm'), { recursive: true });
    await mkdir(join(root, 'mem'));
    await mkdir(join(root, 'lo'));
    await writeFile(join(root, 'big'), randomBytes(20_000_000));
    await writeFile(join(root, 'dfm', 'big'), randomBytes(MiB));
    await writeFile(join(root, 'mem', 'f64'), randomBytes(64 * 1024));
    const small = randomBytes(4096);
    await Promise.all(Array.from({ length: 500 }, (_, i) => writeFile(join(root, 'lo', `f${i}`), small)));
  });
  afterEach(async () => {
    destroyAll(wires);
    const proc = server?.proc;
    server = undefined;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await exited;
    }
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  const open = async (port: number) => {
    const wire = await Wire.open(port);
    wires.push(wire);
    return wire;
  };

  test('RSS ≤ 256 MiB under 16 hostile connections; descriptors back and CPU idle once they leave', async () => {
    server = await startServerProcess(base);
    const { pid, port } = server;
    // The small downloads below start the small-read worker, which stays: its descriptors are not a leak.
    await warmSmallReads(port);
    const baselineFds = await openFds(pid);
    let peakKiB = await rssKiB(pid);
    const sampler = setInterval(() => void rssKiB(pid).then((kib) => (peakKiB = Math.max(peakKiB, kib)), () => undefined), 50);
    try {
      const patterns = [
        'DOWNLOAD\nbig\n'.repeat(2),
        'DOWNLOAD\ndfm/big\n'.repeat(4000),
        'DOWNLOAD\nmem/f64\n'.repeat(4000),
        'LIST\nlo\n'.repeat(1000),
      ];
      const hostile = await Promise.all(Array.from({ length: 16 }, () => open(port)));
      await Promise.all(
        hostile.map(async (wire, i) => {
          wire.socket.pause();
          await wire.send(patterns[i % patterns.length]!);
          // The LIST senders close at once, as in the issue; the others hold on, reading nothing.
          if (i % patterns.length === 3) wire.destroy();
        }),
      );
      await sleep(2000);
      for (const wire of hostile) wire.destroy();
      await eventually(async () => (await openFds(pid)) <= baselineFds + 2, `the server's descriptors back to ${baselineFds}`, 20_000);
    } finally {
      clearInterval(sampler);
    }
    const cpuBefore = await cpuSeconds(pid);
    await sleep(1000);
    const busy = (await cpuSeconds(pid)) - cpuBefore;

    // Still serving.
    const wire = await open(port);
    expect((await wire.download('mem/f64')).reply).toMatch(/^OK 65536 /);
    await wire.send(listRequest('lo'));
    const listed = await readListAnswer(replySource(wire));
    // Files the server never committed nor STATed: no digest, and none was computed for the LIST.
    expect([listed.count, listed.files.every((file) => file.digest === '-')]).toEqual([500, true]);

    process.stdout.write(`issue 16: server peak RSS ${Math.round(peakKiB / 1024)} MiB under 16 hostile connections; CPU ${busy.toFixed(2)} s in the second after they left\n`);
    expect(peakKiB).toBeLessThanOrEqual(256 * 1024);
    // Idle: a busy server burns ≈ 1 s per second; a guard, well above noise.
    expect(busy).toBeLessThan(0.3);
  }, 60_000);

  test('a server stopped under 3,000 pipelined LISTs stops: "Server stopped", then the process exits', async () => {
    server = await startServerProcess(base);
    const { proc, port } = server;
    const wire = await open(port);
    wire.socket.pause();
    await wire.send('LIST\nlo\n'.repeat(3000));
    await sleep(500);
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(15_000).then(() => 'still running' as const)]);
    expect(server.output()).toContain('Server stopped');
    expect(code).toBe(0);
  }, 30_000);

  test('the same small file downloaded and listed through the budget: right bytes, right order', async () => {
    server = await startServerProcess(base);
    const wire = await open(server.port);
    await wire.send('DOWNLOAD\nmem/f64\nLIST\nmem\n'.repeat(50));
    const data = await readFile(join(base, 'storage', 'mem', 'f64'));
    for (let i = 0; i < 50; i++) {
      expect(await wire.line()).toBe(`OK 65536 ${sha256(data)}`);
      expect((await wire.bytes(65536)).equals(data)).toBe(true);
      expect((await readListAnswer(replySource(wire))).count).toBe(1);
    }
  }, 30_000);
});
