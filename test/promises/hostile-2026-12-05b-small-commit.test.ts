import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ensureBuilt, rxfer } from '../helpers/cli';

/**
 * Hostile pass 2026-12-05b (issue 18). Promise (README, "Integrity": "Then the rename … then an fsync
 * of the folder"; PROTOCOL.md, UPLOAD: "fsync the staging file, rename it over the real name and
 * fsync the folder"). test/promises/fsync.test.ts checks it for uploads above 64 KiB through a
 * journal of node:fs in the test process; uploads of at most 64 KiB are committed by the
 * small-commit worker (src/storage/small-commit.worker.js) in a worker thread that journal never
 * sees: both of its fsyncs could be dropped with every test passing. Here the real server process
 * runs under strace (-y names each descriptor's file), and a real upload of 1 KiB is checked:
 * the staged data is fsynced before the rename, and the folder after it. Skipped where strace
 * cannot trace (not installed, or ptrace forbidden).
 */
const canTrace = ((): boolean => {
  try {
    return spawnSync('strace', ['-f', '-qq', '-e', 'trace=none', process.execPath, '-e', '0'], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
})();

let dir: string | undefined;
let proc: ChildProcess | undefined;

beforeAll(() => ensureBuilt(), 120_000);
afterEach(() => {
  if (proc?.pid && proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid, 'SIGKILL');
  proc = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** `rxfer serve` under strace; resolves with its port once it listens. */
const serveTraced = async (configPath: string, tracePath: string): Promise<number> => {
  const child = spawn(
    'strace',
    ['-f', '-qq', '-y', '-s', '4096', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat', '-o', tracePath, process.execPath, BIN, 'serve', '--config', configPath],
    // Its own process group: SIGTERM goes to the server itself (strace does not pass it on), then strace ends.
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  proc = child;
  let out = '';
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on \S+ port (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${out.slice(0, 2000)}`)));
  });
};

const stopped = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    process.kill(-child.pid!, 'SIGTERM');
  });

const quoted = (text: string): string => JSON.stringify(text);

(canTrace ? test : test.skip)('an upload of 1 KiB (small-commit worker): data fsynced before the rename, the folder fsynced after it', async () => {
  const base = mkdtempSync(join(tmpdir(), 'rxfer-hb-small-commit-'));
  dir = base;
  const root = join(base, 'root');
  const configPath = join(base, 'config.json');
  const tracePath = join(base, 'trace.txt');
  writeFileSync(configPath, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, storage: { kind: 'local', root }, log: { level: 'info', format: 'json' } }));
  const port = await serveTraced(configPath, tracePath);
  writeFileSync(join(base, 'small.txt'), Buffer.alloc(1024, 'x'));
  const put = await rxfer(['put', join(base, 'small.txt'), 'deep/er/small.txt', '-p', String(port), '-q']);
  expect(put).toMatchObject({ code: 0 });
  await stopped(proc!);
  const realRoot = realpathSync(root);
  const target = join(realRoot, 'deep', 'er', 'small.txt');
  const folder = join(realRoot, 'deep', 'er');
  expect(existsSync(target)).toBe(true);

  const lines = readFileSync(tracePath, 'utf8').split('\n');
  // rename("from", "to") or renameat/renameat2(AT_FDCWD, "from", AT_FDCWD, "to"[, 0]); a link when the name must not exist.
  // The worker renames through the folder it opened and checked: "/proc/self/fd/<n>/small.txt" (src/storage/opened-paths.ts).
  const throughFolder = new RegExp(`"/proc/self/fd/\\d+/small\\.txt"`);
  const at = lines.findIndex((line) => /\b(rename|renameat2?|link|linkat)\(/.test(line) && (line.includes(`${quoted(target)}`) || throughFolder.test(line)));
  expect(at).toBeGreaterThanOrEqual(0);
  const from = /\b(?:rename|link)\("([^"]+)"/.exec(lines[at]!)?.[1] ?? /\b(?:renameat2?|linkat)\(\w+(?:<[^>]*>)?, "([^"]+)"/.exec(lines[at]!)?.[1];
  expect(from).toBeDefined();
  const fsyncOf = (line: string): string | undefined => /\b(?:fsync|fdatasync)\(\d+<([^>]+)>/.exec(line)?.[1];
  // The staging file is renamed through the staging folder opened for the batch ("/proc/self/fd/<n>/.rxfer-part-…"),
  // and strace -y names the fsynced descriptor by its real path: staging names are unique, so the name decides.
  const stagedName = from!.split('/').pop()!;
  const dataSyncedBefore = lines.slice(0, at).some((line) => fsyncOf(line)?.endsWith(`/${stagedName}`) === true);
  const folderSyncedAfter = lines.slice(at + 1).some((line) => fsyncOf(line) === folder);
  expect({ dataSyncedBefore, folderSyncedAfter }).toEqual({ dataSyncedBefore: true, folderSyncedAfter: true });
}, 120_000);
