import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load-config';
import { startServer } from '../../src/server/start-server';
import { type CliResult, ensureBuilt, rxfer, spawnRxfer, spawnServe } from '../helpers/cli';
import { CountingProxy, type Direction } from '../helpers/counting-proxy';
import { eventually } from '../helpers/server';
import { RxferClient } from '../../src/client/rxfer-client';

const MiB = 1024 * 1024;
/** Control lines (STAT, RESUME, headers, replies) on top of the data: a generous bound. */
const CONTROL_BYTES = 4096;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

beforeAll(() => ensureBuilt(), 120_000);

/** A real server on `root` that can be stopped and started again on the same storage. */
const serveRoot = async (root: string) => {
  const config = parseConfig({ server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0 }, storage: { kind: 'local', root }, log: { level: 'silent' } });
  return startServer(config);
};

/** The data files of the server's kept partial uploads. */
const partialUploads = async (root: string): Promise<string[]> =>
  (await readdir(join(root, '.rxfer', 'partials')).catch(() => [] as string[])).filter((name) => !name.endsWith('.json')).map((name) => join(root, '.rxfer', 'partials', name));

const sizeOf = async (path: string): Promise<number> => (await stat(path).catch(() => undefined))?.size ?? 0;

describe('resume with the CLI: SIGKILL mid-transfer, run the same command again', () => {
  let base: string;
  let root: string;
  let local: string;
  let server: Awaited<ReturnType<typeof startServer>>;
  let proxy: CountingProxy;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-resume-'));
    root = join(base, 'root');
    local = join(base, 'local');
    await mkdir(root);
    await mkdir(local);
    server = await serveRoot(root);
    proxy = await CountingProxy.start(server.port);
  });

  afterEach(async () => {
    await proxy.close();
    await server.close();
    await rm(base, { recursive: true, force: true });
  });

  /** Runs the CLI through the proxy and SIGKILLs it once `limit` bytes went `direction`. */
  const killAfter = async (args: string[], direction: Direction, limit: number, settled: () => Promise<boolean>) => {
    const holding = proxy.holdAfterBytes(direction, limit);
    const child = spawnRxfer([...args, '-p', String(proxy.port), '-q']);
    const exited = once(child, 'exit');
    await holding;
    // What crossed the proxy must have reached the disk at the receiving end before the kill.
    await eventually(settled, 10_000, 'the received bytes to reach the disk');
    child.kill('SIGKILL');
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
  };

  /** Size of the one kept partial upload (0 if none yet). */
  const keptUpload = async (): Promise<number> => sizeOf((await partialUploads(root))[0] ?? '');

  /**
   * `rxfer put` of `source`, killed once `at` bytes went up and reached the server's disk; then
   * until the server has noticed the cut and offers the kept bytes (the RESUME question the re-run
   * asks): a re-run before that, on a loaded machine, found the name still held and started over.
   */
  const interruptPut = async (source: string, at: number) => {
    await killAfter(['put', source, 'big.bin'], 'up', at, async () => (await keptUpload()) >= at - CONTROL_BYTES);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      await eventually(async () => (await client.keptUpload('big.bin')) !== null, 10_000, 'the server to offer the kept upload');
    } finally {
      await client.quit();
    }
  };

  const viaProxy = (args: string[]) => {
    proxy.reset();
    return rxfer([...args, '-p', String(proxy.port)]);
  };

  /** The re-run resumed: it says so, sent at most what was missing, and `path` holds exactly `data`. */
  const expectResumed = async (run: CliResult, direction: Direction, data: Buffer, kept: number, path: string) => {
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('resumed at');
    expect(proxy.bytes[direction]).toBeLessThanOrEqual(data.length - kept + CONTROL_BYTES);
    expect((await readFile(path)).equals(data)).toBe(true);
  };

  /** The re-run started over: no resume, everything sent again, and `path` holds exactly `data`. */
  const expectStartedOver = async (run: CliResult, direction: Direction, data: Buffer, path: string) => {
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('resumed at');
    expect(proxy.bytes[direction]).toBeGreaterThanOrEqual(data.length);
    expect((await readFile(path)).equals(data)).toBe(true);
  };

  test.each([0.1, 0.5, 0.9])('put of 24 MiB killed at %p resumes, sends only the rest, and stores the exact file', async (fraction) => {
    const data = randomBytes(24 * MiB);
    const source = join(local, 'big.bin');
    await writeFile(source, data);
    const at = Math.floor(data.length * fraction);
    await interruptPut(source, at);

    // Nothing under the real name; the kept bytes wait outside the user's files.
    await expect(stat(join(root, 'big.bin'))).rejects.toThrow();
    const kept = await keptUpload();
    expect(kept).toBeGreaterThanOrEqual(at - CONTROL_BYTES);

    const second = await viaProxy(['put', source, 'big.bin']);
    await expectResumed(second, 'up', data, kept, join(root, 'big.bin'));
    expect(second.stdout).toMatch(/resumed at/);
    expect(await partialUploads(root)).toEqual([]);
  });

  test.each([0.1, 0.5, 0.9])('get of 24 MiB killed at %p resumes from the kept partial file and ends byte-identical', async (fraction) => {
    const data = randomBytes(24 * MiB);
    await writeFile(join(local, 'src.bin'), data);
    expect((await rxfer(['put', join(local, 'src.bin'), 'big.bin', '-p', String(server.port), '-q'])).code).toBe(0);
    const target = join(local, 'copy.bin');
    const partial = join(local, '.copy.bin.rxfer-resume');
    const at = Math.floor(data.length * fraction);
    await killAfter(['get', 'big.bin', target], 'down', at, async () => (await sizeOf(partial)) >= at - CONTROL_BYTES);

    await expect(stat(target)).rejects.toThrow();
    const kept = await sizeOf(partial);
    await expectResumed(await viaProxy(['get', 'big.bin', target]), 'down', data, kept, target);
    expect((await readdir(local)).sort()).toEqual(['copy.bin', 'src.bin']);
  });

  test('a tampered partial upload on the server is detected: the upload starts over and the result is exact', async () => {
    const data = randomBytes(8 * MiB);
    const source = join(local, 'big.bin');
    await writeFile(source, data);
    await interruptPut(source, 4 * MiB);
    const [partial] = await partialUploads(root);
    // One flipped byte in the middle of the kept prefix.
    const handle = await open(partial!, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, MiB);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, MiB);
    await handle.close();

    await expectStartedOver(await viaProxy(['put', source, 'big.bin']), 'up', data, join(root, 'big.bin'));
  });

  test('a local partial download that no longer matches the server file is not trusted: the whole file comes again', async () => {
    const data = randomBytes(4 * MiB);
    await writeFile(join(local, 'src.bin'), data);
    expect((await rxfer(['put', join(local, 'src.bin'), 'f.bin', '-p', String(server.port), '-q'])).code).toBe(0);
    // A partial file whose bytes differ from the server's prefix (another version, or damage).
    await writeFile(join(local, '.copy.bin.rxfer-resume'), randomBytes(MiB));
    await expectStartedOver(await viaProxy(['get', 'f.bin', join(local, 'copy.bin')]), 'down', data, join(local, 'copy.bin'));
  });

  test('the server restarts between the interruption and the resume: the kept upload survives it', async () => {
    const data = randomBytes(16 * MiB);
    const source = join(local, 'big.bin');
    await writeFile(source, data);
    await interruptPut(source, 10 * MiB);
    const kept = await keptUpload();

    await proxy.close();
    await server.close();
    server = await serveRoot(root);
    proxy = await CountingProxy.start(server.port);

    await expectResumed(await viaProxy(['put', source, 'big.bin']), 'up', data, kept, join(root, 'big.bin'));
  });

  test('--no-resume sends everything again', async () => {
    const data = randomBytes(8 * MiB);
    const source = join(local, 'big.bin');
    await writeFile(source, data);
    await interruptPut(source, 6 * MiB);
    const second = await viaProxy(['put', source, 'big.bin', '--no-resume']);
    await expectStartedOver(second, 'up', data, join(root, 'big.bin'));
    expect(second.stderr).toBe('');
  });

  test('a file already there (same size and SHA-256) costs one round trip and no data, both ways; a changed one is sent', async () => {
    const data = randomBytes(3 * MiB);
    const source = join(local, 'same.bin');
    await writeFile(source, data);
    expect((await viaProxy(['put', source, 'same.bin'])).code).toBe(0);

    const again = await viaProxy(['put', source, 'same.bin']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('skipped: already there');
    expect(proxy.bytes.up).toBeLessThan(CONTROL_BYTES);

    const fetched = await viaProxy(['get', 'same.bin', source]);
    expect(fetched.stdout).toContain('skipped: already there');
    expect(proxy.bytes.down).toBeLessThan(CONTROL_BYTES);

    // Same size, one byte different: not identical, so it goes.
    data[100] = data[100]! ^ 1;
    await writeFile(source, data);
    const changed = await viaProxy(['put', source, 'same.bin']);
    expect(changed.stdout).not.toContain('skipped');
    expect(proxy.bytes.up).toBeGreaterThanOrEqual(data.length);
    expect(sha256(await readFile(join(root, 'same.bin')))).toBe(sha256(data));

    const forced = await viaProxy(['put', source, 'same.bin', '--no-skip-existing']);
    expect(forced.stdout).not.toContain('skipped');
    expect(proxy.bytes.up).toBeGreaterThanOrEqual(data.length);
  });

  test('put -r and get -r send only the files that changed', async () => {
    const tree = join(local, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    const files: Record<string, Buffer> = { 'a.txt': Buffer.from('a'), 'sub/b.bin': randomBytes(2 * MiB), 'sub/c.txt': Buffer.from('c') };
    for (const [name, data] of Object.entries(files)) await writeFile(join(tree, name), data);
    expect((await viaProxy(['put', '-r', tree, 't'])).code).toBe(0);

    await writeFile(join(tree, 'sub', 'c.txt'), 'changed');
    const again = await viaProxy(['put', '-r', tree, 't']);
    expect(again.stdout).toMatch(/ 1 files .*\(2 already there, skipped\)/);
    expect(proxy.bytes.up).toBeLessThan(CONTROL_BYTES);
    expect(await readFile(join(root, 't', 'sub', 'c.txt'), 'utf8')).toBe('changed');

    const copy = join(local, 'copy');
    expect((await viaProxy(['get', '-r', 't', copy])).code).toBe(0);
    await writeFile(join(copy, 't', 'a.txt'), 'local edit');
    const back = await viaProxy(['get', '-r', 't', copy]);
    expect(back.stdout).toMatch(/ 1 files .*\(2 already there, skipped\)/);
    expect(proxy.bytes.down).toBeLessThan(CONTROL_BYTES);
    expect(await readFile(join(copy, 't', 'a.txt'), 'utf8')).toBe('a');
  });
});

describe('resume after the server itself is killed (SIGKILL) mid-upload', () => {
  test('the data that reached its disk is kept, and the restarted server resumes from there', async () => {
    const base = await mkdtemp(join(tmpdir(), 'rxfer-crash-'));
    const root = join(base, 'root');
    let server = await spawnServe(root);
    let proxy = await CountingProxy.start(Number(server.port));
    try {
      const data = randomBytes(16 * MiB);
      const source = join(base, 'big.bin');
      await writeFile(source, data);
      const holding = proxy.holdAfterBytes('up', 8 * MiB);
      const put = rxfer(['put', source, '-p', String(proxy.port), '-q']);
      await holding;
      await eventually(async () => (await sizeOf((await partialUploads(root))[0] ?? '')) >= 8 * MiB - CONTROL_BYTES, 10_000, 'the bytes to reach the disk');
      server.child.kill('SIGKILL');
      await once(server.child, 'exit');
      expect((await put).code).toBe(1);
      await proxy.close();
      await expect(stat(join(root, 'big.bin'))).rejects.toThrow();

      server = await spawnServe(root);
      proxy = await CountingProxy.start(Number(server.port));
      const kept = await sizeOf((await partialUploads(root))[0]!);
      const second = await rxfer(['put', source, '-p', String(proxy.port)]);
      expect(second.code).toBe(0);
      expect(second.stderr).toContain('resumed at');
      expect(proxy.bytes.up).toBeLessThanOrEqual(data.length - kept + CONTROL_BYTES);
      expect((await readFile(join(root, 'big.bin'))).equals(data)).toBe(true);
    } finally {
      await proxy.close();
      server.child.kill('SIGKILL');
      await rm(base, { recursive: true, force: true });
    }
  });
});
