import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RxferClient } from '../../src/client';
import { SecureServer, makeBase, serverSockets, stagingFiles, startSecureServer, userFiles } from './support/server';
import { GUARD_MS, Wire, destroyAll, eventually, sha256 } from './support/wire';

/**
 * Slow and silent peers against the timeouts:
 *   stallTimeoutMs 1000 + minBytesPerSecond 1024: a frame in progress moving < 1024 bytes in a second is cut;
 *   idleTimeoutMs 3000: a connection with no traffic at all is cut.
 * No timing is asserted: timeouts below are failure guards only.
 */
const LIMITS = { stallTimeoutMs: 1000, minBytesPerSecond: 1024, idleTimeoutMs: 3000 } as const;
const EIGHT_MIB = 8 * 1024 * 1024;

/** Sends `bytes` one at a time every `everyMs` until stopped or the connection ends (a write error ends it). */
const dribble = (wire: Wire, bytes: Buffer, everyMs: number): (() => void) => {
  let i = 0;
  const timer = setInterval(() => {
    if (wire.isEnded || i >= bytes.length) return;
    wire.send(bytes.subarray(i, ++i)).catch(() => undefined);
  }, everyMs);
  return () => clearInterval(timer);
};

/** The reply line of a download and the number of data bytes that followed it. */
const splitHeader = (received: Buffer): { header: string; body: number } => {
  const newline = received.indexOf(0x0a);
  return { header: received.subarray(0, newline).toString(), body: received.length - newline - 1 };
};

/** A command line that never ends: "DOWNLOAD" and then letters, never a newline. */
const NEVER_ENDING_LINE = Buffer.from('DOWNLOAD' + 'x'.repeat(1000));

describe('slow peers against an in-process server', () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  const stops: (() => void)[] = [];

  beforeAll(async () => {
    server = await startSecureServer({ server: { maxConnectionsPerIp: 200 }, limits: LIMITS, auth: { anonymous: 'write' } });
    await writeFile(join(server.root, 'big.bin'), randomBytes(EIGHT_MIB));
  });
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
    destroyAll(wires);
  });
  afterAll(() => server.close());

  const open = async () => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    return wire;
  };

  test('slowloris lines, a trickling upload and a silent peer are cut (STALLED, STALLED, IDLE_TIMEOUT) while a normal client transfers', async () => {
    const slowloris = await Promise.all(Array.from({ length: 10 }, open));
    for (const wire of slowloris) stops.push(dribble(wire, NEVER_ENDING_LINE, 300));

    const trickler = await open();
    await trickler.send('UPLOAD 100\nslow.txt\n');
    expect(await trickler.line()).toBe('OK file recv');
    stops.push(dribble(trickler, Buffer.alloc(100, 0x41), 200));

    const silent = await open();

    const normal = (async () => {
      const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
      const data = randomBytes(2 * 1024 * 1024);
      await client.uploadBuffer('normal.bin', data);
      const back = await client.downloadBuffer('normal.bin');
      await client.quit();
      return back.data.equals(data);
    })();

    const outcomes = await Promise.all([
      ...slowloris.map(async (wire) => {
        const reply = await wire.line(GUARD_MS);
        await wire.serverClosed();
        return reply;
      }),
      (async () => {
        const reply = await trickler.line(GUARD_MS);
        await trickler.serverClosed();
        return reply;
      })(),
      (async () => {
        const reply = await silent.line(GUARD_MS);
        await silent.serverClosed();
        return reply;
      })(),
    ]);
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill(expect.stringMatching(/^ERR STALLED /)));
    expect(outcomes[10]).toMatch(/^ERR STALLED /);
    expect(outcomes[11]).toMatch(/^ERR IDLE_TIMEOUT /);
    expect(await normal).toBe(true);

    // The trickled upload committed nothing and left no staging file.
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 'the staging file of the stalled upload to go');
    expect(await userFiles(server.root)).toEqual(['big.bin', 'normal.bin']);
  });

  test('a downloader of 8 MiB that never reads is cut by the server (its socket is closed, the file released)', async () => {
    const wire = await open();
    const clientPort = wire.socket.localPort;
    const mine = () => serverSockets(server.port).filter((socket) => socket.remotePort === clientPort);
    expect(mine()).toHaveLength(1);
    await wire.send('DOWNLOAD\nbig.bin\n');
    wire.socket.pause(); // never read again (until the end of the test)
    await eventually(() => mine().length === 0, 'the server to close the never-reading peer', 15_000);

    // Now read what was in flight: a cut download (fewer than 8 MiB after the header), then EOF.
    wire.socket.resume();
    const { header, body } = splitHeader(await wire.serverClosed());
    expect(header).toMatch(/^OK 8388608 [0-9a-f]{64}$/);
    expect(body).toBeLessThan(EIGHT_MIB);

    // Others are still served.
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    expect((await client.downloadBuffer('normal.bin')).size).toBe(2 * 1024 * 1024);
    await client.quit();
  });

  test('a client that reads slowly but steadily above the minimum rate is not cut', async () => {
    // 256 KiB at ~64 KiB per 250 ms (≈ 256 KiB/s ≫ 1 KiB/s): reading in bursts with pauses must be fine.
    const data = randomBytes(256 * 1024);
    await writeFile(join(server.root, 'medium.bin'), data);
    const wire = await open();
    await wire.send('DOWNLOAD\nmedium.bin\n');
    expect(await wire.line()).toBe(`OK ${data.length} ${sha256(data)}`);
    expect((await wire.bytes(data.length, GUARD_MS)).equals(data)).toBe(true);
    await wire.send('QUIT\n');
    expect(await wire.line()).toBe('OK bye');
  });
});

// ---- server process memory under 50 slowloris + 10 never-reading peers -----------------------------------

const CLI = join(__dirname, '..', '..', 'bin', 'rxfer.js');

const rssKiB = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
};
const openFds = async (pid: number): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length;

describe('server RSS stays bounded (child process: node bin/rxfer.js serve)', () => {
  let child: ChildProcess | undefined;
  let base: string;
  const wires: Wire[] = [];
  const stops: (() => void)[] = [];

  afterAll(async () => {
    for (const stop of stops.splice(0)) stop();
    destroyAll(wires);
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    if (base) await rm(base, { recursive: true, force: true });
  });

  const skipUnlessBuilt = existsSync(join(__dirname, '..', '..', 'dist', 'cli', 'main.js')) && existsSync('/proc/self/status') ? test : test.skip;

  skipUnlessBuilt('50 slowloris peers and 10 never-reading 8 MiB downloaders: all cut, RSS below 200 MB', async () => {
    base = await makeBase('rxfer-sec-rss-');
    const root = join(base, 'storage');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'big.bin'), randomBytes(EIGHT_MIB));
    const configPath = join(base, 'config.json');
    await writeFile(
      configPath,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0, maxConnections: 500, maxConnectionsPerIp: 500, shutdownGraceMs: 0 },
        storage: { kind: 'local', root },
        limits: LIMITS,
        auth: { anonymous: 'write' },
        log: { level: 'info' },
      }),
    );
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the server did not start: ${stderr}${out.slice(0, 2000)}`)), GUARD_MS);
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on \S+ port (\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      proc.once('exit', (code) => reject(new Error(`the server exited (${code}): ${stderr}`)));
    });
    const pid = proc.pid!;
    const baselineFds = await openFds(pid);

    let peakKiB = await rssKiB(pid);
    const sampler = setInterval(() => {
      rssKiB(pid).then((kib) => (peakKiB = Math.max(peakKiB, kib)), () => undefined);
    }, 50);
    stops.push(() => clearInterval(sampler));

    const slowloris = await Promise.all(Array.from({ length: 50 }, () => Wire.open(port)));
    wires.push(...slowloris);
    for (const wire of slowloris) stops.push(dribble(wire, NEVER_ENDING_LINE, 300));
    const readers = await Promise.all(Array.from({ length: 10 }, () => Wire.open(port)));
    wires.push(...readers);
    for (const wire of readers) {
      await wire.send('DOWNLOAD\nbig.bin\n');
      wire.socket.pause();
    }

    const replies = await Promise.all(slowloris.map((wire) => wire.line(GUARD_MS)));
    expect(replies).toEqual(Array(50).fill(expect.stringMatching(/^ERR STALLED /)));
    // The never-readers are gone once the server's descriptors are back to where they were.
    await eventually(async () => (await openFds(pid)) <= baselineFds + 2, 'the server to close every slow peer', 20_000);
    const peak = peakKiB;
    clearInterval(sampler);

    for (const wire of readers) {
      wire.socket.resume();
      const { header, body } = splitHeader(await wire.serverClosed());
      expect(header).toMatch(/^OK 8388608 /);
      expect(body).toBeLessThan(EIGHT_MIB);
    }
    // Still serving.
    const client = await RxferClient.connect({ host: '127.0.0.1', port });
    const data = randomBytes(100_000);
    await client.uploadBuffer('after.bin', data);
    expect((await client.downloadBuffer('after.bin')).data.equals(data)).toBe(true);
    await client.quit();

    process.stdout.write(`server peak RSS under 50 slowloris + 10 never-readers: ${Math.round(peak / 1024)} MiB\n`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(200 * 1024);
  }, 45_000);
});
