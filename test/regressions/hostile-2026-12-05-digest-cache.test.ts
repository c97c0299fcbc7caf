import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { BIN, ensureBuilt, rxfer, type CliResult } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';
import { RACY_MARGIN_MS } from '../../src/client/digest-cache';

/**
 * Hostile tests of put -r's client-side digest cache (src/client/digest-cache.ts, issue 20), from
 * outside: real CLI processes against the real server, real files, RXFER_CACHE_DIR in the test's own
 * folder. The promise attacked: a put -r re-run never skips a file whose bytes differ from the
 * server's copy, and never reports success for a file it did not store. After every re-run the
 * server's bytes are compared (sha256) with the local ones, and the exit code and summary checked.
 *
 * Files must be older than the racy margin (2 s) before a run for the cache to record them: each
 * scenario sleeps once. Four findings of the attack are fixed and kept here as tests (a cloned
 * whole-second file system, NFC/NFD twins, a name that is not UTF-8) or as a documented limit (mmap).
 */
let server: TestServer;
let cacheDir: string;

beforeAll(async () => {
  ensureBuilt();
  server = await startTestServer();
  cacheDir = join(server.scratch, 'cache');
}, 120_000);
afterAll(() => server.close());

const env = (extra: Record<string, string> = {}) => ({ RXFER_PORT: String(server.port), RXFER_CACHE_DIR: cacheDir, ...extra });
const run = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => rxfer(args, { cwd: server.scratch, env: env(extra) });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ageFiles = () => sleep(RACY_MARGIN_MS + 300);
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Regular files below `dir` (links and folders left out, as put -r does), relative names. */
const localFiles = (dir: string, prefix = ''): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) return localFiles(join(dir, entry.name), rel);
    return entry.isFile() ? [rel] : [];
  });

/** Every local file's bytes are the server's copy's (remote names in NFC). */
const expectMirror = (localDir: string, remote: string): void => {
  const differing = localFiles(join(server.scratch, localDir)).filter((name) => {
    const stored = join(server.root, remote, name.normalize('NFC'));
    return !existsSync(stored) || sha(stored) !== sha(join(server.scratch, localDir, name));
  });
  expect(differing).toEqual([]);
};

/** `N files … (M already there, skipped)` of the summary line. */
const summary = (result: CliResult): { files: number; skipped: number } => {
  const m = /→ \S+ {2}(\d+) files .*?(?:\((\d+) already there, skipped\))?\s*(?:\d+ empty folder\(s\))?$/m.exec(result.stdout);
  if (!m) throw new Error(`no summary line: ${JSON.stringify(result)}`);
  return { files: Number(m[1]), skipped: Number(m[2] ?? 0) };
};

const expectRun = (result: CliResult, files: number, skipped: number): void => {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(summary(result)).toEqual({ files, skipped });
};

/** Sets mtime back to exactly `stats`' (nanoseconds), as `touch -m -d @sec.nsec` does. */
const touchBack = (path: string, stats: { mtimeNs: bigint }): void => {
  const sec = stats.mtimeNs / 1_000_000_000n;
  const nsec = (stats.mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
  execFileSync('touch', ['-m', '-d', `@${sec}.${nsec}`, path]);
};

/** Writes `text` over `path` keeping its size and mtime (only ctime tells). */
const sameSizeRewrite = (path: string, text: string | Buffer): void => {
  const before = lstatSync(path, { bigint: true });
  expect(BigInt(Buffer.byteLength(text))).toBe(before.size);
  writeFileSync(path, text);
  touchBack(path, before);
};

const cacheFiles = (): string[] => (existsSync(join(cacheDir, 'digests')) ? readdirSync(join(cacheDir, 'digests')).map((name) => join(cacheDir, 'digests', name)) : []);
/** The cache of local folder `dir` (its header names its real path). */
const cacheOf = (dir: string, algorithm = 'sha256'): string | undefined =>
  cacheFiles().find((path) => path.endsWith(`.${algorithm}`) && readFileSync(path, 'utf8').split('\n', 1)[0]!.endsWith(JSON.stringify(join(server.scratch, dir))));
const recordedNames = (dir: string, algorithm = 'sha256'): string[] => {
  const path = cacheOf(dir, algorithm);
  return path === undefined ? [] : readFileSync(path, 'utf8').trim().split('\n').slice(1).map((line) => line.split(' ').slice(6).join(' ')).sort();
};

const isRoot = process.getuid?.() === 0;
const mountTmpfs = (dir: string, options: string): void => {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
};
const umount = (dir: string): void => {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    // not mounted
  }
};

test('every change that keeps size and mtime (and some that keep the inode) is sent on the re-run; the rest stay skipped', async () => {
  // Would catch: a cache state without ctime (every change here keeps size and mtime; shown to fail
  // with ctime left out of the state), a record found for another name (NFD, deep, spaces), a record
  // carried although its state no longer matches. (The inode alone is never what tells here: each of
  // these changes, rename included, also moves ctime.)
  const dir = 'stat-keepers';
  const root = join(server.scratch, dir);
  const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
  mkdirSync(join(root, deep), { recursive: true });
  const files: Record<string, string | Buffer> = {
    'control.txt': 'unchanged control',
    'rewrite.txt': 'rewrite v1',
    'trunc.txt': 'truncate v1',
    'cp.txt': 'cp target 1',
    'swapA.txt': 'swap AAAA',
    'swapB.txt': 'swap BBBB',
    'hl1.txt': 'hard link 1',
    'replaced.txt': 'replaced v1',
    'big.bin': randomBytes(3 * 1024 * 1024),
    'with  two spaces .x.txt': 'spaces v1',
    'cafe\u0301 nfd.txt': 'nfd name v1',
    [`${deep}/leaf.txt`]: 'deep leaf v1',
    [`${deep}/still.txt`]: 'deep still',
  };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(root, name), data);
  linkSync(join(root, 'hl1.txt'), join(root, 'hl2.txt'));
  // swapA and swapB share an mtime, so after the swap each name has its old size and mtime.
  touchBack(join(root, 'swapB.txt'), lstatSync(join(root, 'swapA.txt'), { bigint: true }));
  const total = Object.keys(files).length + 1;
  await ageFiles();

  expectRun(await run(['put', '-r', dir, dir]), total, 0);
  expect(recordedNames(dir)).toHaveLength(total);
  expectRun(await run(['put', '-r', dir, dir]), 0, total);

  const p = (name: string) => join(root, name);
  sameSizeRewrite(p('rewrite.txt'), 'REWRITE V2');
  {
    const before = lstatSync(p('trunc.txt'), { bigint: true });
    truncateSync(p('trunc.txt'), 0);
    writeFileSync(p('trunc.txt'), 'TRUNCATE V2');
    touchBack(p('trunc.txt'), before);
  }
  {
    const source = join(server.scratch, 'cp-source.txt');
    writeFileSync(source, 'CP SOURCE 2');
    touchBack(source, lstatSync(p('cp.txt'), { bigint: true }));
    const ino = lstatSync(p('cp.txt')).ino;
    execFileSync('cp', ['--preserve=all', source, p('cp.txt')]);
    expect(lstatSync(p('cp.txt')).ino).toBe(ino);
  }
  renameSync(p('swapA.txt'), p('swap.tmp'));
  renameSync(p('swapB.txt'), p('swapA.txt'));
  renameSync(p('swap.tmp'), p('swapB.txt'));
  sameSizeRewrite(p('hl2.txt'), 'HARD LINK 2');
  {
    const before = lstatSync(p('replaced.txt'), { bigint: true });
    rmSync(p('replaced.txt'));
    writeFileSync(p('replaced.txt'), 'REPLACED V2');
    touchBack(p('replaced.txt'), before);
  }
  {
    // One byte in the middle of a streamed file, in place (dd conv=notrunc), mtime set back.
    const before = lstatSync(p('big.bin'), { bigint: true });
    const byte = (files['big.bin'] as Buffer)[1_500_000]! ^ 0xff;
    execFileSync('dd', ['of=' + p('big.bin'), 'bs=1', 'seek=1500000', 'conv=notrunc', 'status=none'], { input: Buffer.from([byte]) });
    touchBack(p('big.bin'), before);
  }
  sameSizeRewrite(p('with  two spaces .x.txt'), 'SPACES V2');
  sameSizeRewrite(p('cafe\u0301 nfd.txt'), 'NFD NAME V2');
  sameSizeRewrite(p(`${deep}/leaf.txt`), 'DEEP LEAF V2');

  // Changed: rewrite, trunc, cp, swapA, swapB, hl1, hl2, replaced, big, spaces, nfd, leaf = 12.
  expectRun(await run(['put', '-r', dir, dir]), 12, total - 12);
  expectMirror(dir, dir);
  // The changed files are now read (fresh ctimes, not recorded) and found identical.
  expectRun(await run(['put', '-r', dir, dir]), 0, total);
  expectMirror(dir, dir);
}, 60_000);

test('a state seen less than the racy margin after it was made is not recorded, and the same-size rewrite right after is sent', async () => {
  // Would catch: a record made without the racy margin (the fresh file would be in the cache).
  const dir = 'racy';
  const root = join(server.scratch, dir);
  mkdirSync(root);
  writeFileSync(join(root, 'old.txt'), 'old and settled');
  await ageFiles();
  writeFileSync(join(root, 'fresh.txt'), 'fresh v1');
  expectRun(await run(['put', '-r', dir, dir]), 2, 0);
  expect(recordedNames(dir)).toEqual(['old.txt']);
  sameSizeRewrite(join(root, 'fresh.txt'), 'FRESH V2');
  expectRun(await run(['put', '-r', dir, dir]), 1, 1);
  expectMirror(dir, dir);
}, 30_000);

const describeRoot = isRoot ? describe : describe.skip;

describeRoot('file systems with whole-second times (ext4 with 128-byte inodes, loop-mounted)', () => {
  const images: string[] = [];
  const mounts: string[] = [];
  const makeImage = (name: string): string => {
    const image = join(server.scratch, name);
    execFileSync('truncate', ['-s', '8M', image]);
    execFileSync('mkfs.ext4', ['-q', '-I', '128', '-F', image], { stdio: 'pipe' });
    images.push(image);
    return image;
  };
  const mount = (image: string, dir: string): void => {
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-o', 'loop', image, dir]);
    mounts.push(dir);
  };
  const unmount = (dir: string): void => {
    umount(dir);
    mounts.splice(mounts.indexOf(dir), 1);
  };
  /** Waits for the start of the next whole second, so that what follows shares one. */
  const nextSecond = () => sleep(1000 - (Date.now() % 1000) + 20);
  afterEach(() => {
    for (const dir of mounts.splice(0)) umount(dir);
  });
  const canLoop = (() => {
    try {
      execFileSync('mkfs.ext4', ['-V'], { stdio: 'pipe' });
      return existsSync('/dev/loop-control');
    } catch {
      return false;
    }
  })();
  const loopTest = canLoop ? test : test.skip;

  loopTest('a rewrite in the same second as the first run (same size, mtime, ctime, inode) is sent: the state was too fresh to record', async () => {
    // Would catch: a margin of less than the file system's granularity (here 1 s), or none.
    const dir = 'coarse';
    mount(makeImage('coarse.img'), join(server.scratch, dir));
    const file = join(server.scratch, dir, 'f.txt');
    await nextSecond();
    writeFileSync(file, 'version-1');
    const first = lstatSync(file, { bigint: true });
    expectRun(await run(['put', '-r', dir, dir]), 1, 0);
    writeFileSync(file, 'version-2');
    const second = lstatSync(file, { bigint: true });
    const stateOf = (s: typeof first) => [s.size, s.mtimeNs, s.ctimeNs, s.ino, s.dev].join(' ');
    // Only meaningful when the second write landed in the same second (it nearly always does).
    if (stateOf(first) === stateOf(second)) expect(recordedNames(dir)).toEqual([]);
    expectRun(await run(['put', '-r', dir, dir]), 1, 0);
    expectMirror(dir, dir);
  }, 30_000);

  // Found by this attack (fixed): the state (size, mtime, ctime, inode, device) does not tell two
  // file systems apart. Two clones of one image, written in the same second, hold a file with the
  // same state and other bytes; mounted in turn at the same place (same loop device), the second was
  // taken for the first and its file skipped, "(1 already there, skipped)", exit 0. A ctime of whole
  // seconds is now never recorded (digest-cache.ts, `recordable`): such files are always read.
  loopTest('a cloned disk image of whole-second times mounted in place of the first: its file with other bytes is sent', async () => {
    const base = makeImage('base.img');
    const [a, b] = ['clone-a.img', 'clone-b.img'].map((name) => {
      const image = join(server.scratch, name);
      copyFileSync(base, image);
      images.push(image);
      return image;
    });
    const [mA, mB, stick] = ['mnt-a', 'mnt-b', 'stick'].map((name) => join(server.scratch, name));
    mount(a!, mA!);
    mount(b!, mB!);
    await nextSecond();
    writeFileSync(join(mA!, 'f'), 'AAAA');
    writeFileSync(join(mB!, 'f'), 'BBBB');
    unmount(mA!);
    unmount(mB!);
    await ageFiles();
    mount(a!, stick!);
    expectRun(await run(['put', '-r', 'stick', 'stick']), 1, 0);
    unmount(stick!);
    mount(b!, stick!);
    await run(['put', '-r', 'stick', 'stick']);
    expectMirror('stick', 'stick');
  }, 30_000);
});

test('a writer changing files while put -r runs, a put -r killed mid-run, two at once: every re-run ends with the server holding the local bytes', async () => {
  // Would catch: a record made for bytes read while the file changed (a digest that is not its
  // state's), a cache made unusable or wrong by a killed run's leftovers or by two runs' renames.
  const dir = 'churn';
  const root = join(server.scratch, dir);
  mkdirSync(join(root, 'hot'), { recursive: true });
  for (let i = 0; i < 120; i++) writeFileSync(join(root, `small-${String(i).padStart(3, '0')}.txt`), `small file ${i}`);
  for (let i = 0; i < 4; i++) writeFileSync(join(root, `big-${i}.bin`), randomBytes(2 * 1024 * 1024 + i));
  for (let i = 0; i < 6; i++) writeFileSync(join(root, 'hot', `hot-${i}.txt`), `hot ${i} v00000`);
  await ageFiles();

  // A writer rewrites the hot files (same size, mtime set back to the millisecond) and now and then a
  // big one, while put -r runs; a bounded number of rounds, so it never starves the run.
  let writing = true;
  let round = 0;
  const writer = (async () => {
    while (writing && round < 300) {
      round++;
      for (let i = 0; i < 6; i++) {
        const hot = join(root, 'hot', `hot-${i}.txt`);
        const before = statSync(hot);
        writeFileSync(hot, `hot ${i} v${String(round).padStart(5, '0')}`);
        utimesSync(hot, before.atime, before.mtime);
      }
      if (round % 10 === 1) {
        const big = join(root, 'big-0.bin');
        const before = statSync(big);
        writeFileSync(big, randomBytes(before.size));
        utimesSync(big, before.atime, before.mtime);
      }
      await sleep(10);
    }
  })();
  const during = await run(['put', '-r', dir, dir]);
  writing = false;
  await writer;
  expect(during.stderr).not.toMatch(/TypeError|RangeError|at .*\.js:\d+/);
  // The run may report a file that changed while read; the next one must leave the server right.
  const after = await run(['put', '-r', dir, dir]);
  expect(after.code).toBe(0);
  expectMirror(dir, dir);

  // Killed mid-run: its temporary file is left in digests/; the re-runs work and end right.
  for (let i = 1; i < 4; i++) writeFileSync(join(root, `big-${i}.bin`), randomBytes(2 * 1024 * 1024 + i));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env() };
  delete childEnv['RXFER_HOST'];
  const child: ChildProcess = spawn(process.execPath, [BIN, 'put', '-r', dir, dir], { cwd: server.scratch, env: childEnv, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await sleep(400);
  child.kill('SIGKILL');
  await exited;
  expect((await run(['put', '-r', dir, dir])).code).toBe(0);
  expectMirror(dir, dir);

  // Two at once, then changes the cache must not hide.
  const both = await Promise.all([run(['put', '-r', dir, dir]), run(['put', '-r', dir, dir])]);
  for (const result of both) expect(result.stderr).not.toMatch(/TypeError|RangeError|at .*\.js:\d+/);
  sameSizeRewrite(join(root, 'small-007.txt'), 'SMALL FILE 7');
  sameSizeRewrite(join(root, 'hot', 'hot-3.txt'), 'HOT 3 V99999');
  const settled = await run(['put', '-r', dir, dir]);
  expect(settled.code).toBe(0);
  expectMirror(dir, dir);
}, 120_000);

test('a server copy changed by someone else, a second remote folder, and --hash blake3 then sha256: nothing differing is skipped', async () => {
  // Would catch: a cache keyed or compared without the server's current digest (server-side changes
  // hidden), caches of two algorithms mixed up (a blake3 digest compared as sha256 or the reverse).
  const dir = 'shared';
  const root = join(server.scratch, dir);
  mkdirSync(root);
  for (const name of ['a.txt', 'b.txt', 'c.txt']) writeFileSync(join(root, name), `content of ${name}`);
  await ageFiles();
  expectRun(await run(['put', '-r', dir, 'first']), 3, 0);
  expectRun(await run(['put', '-r', dir, 'second']), 3, 0);
  expectRun(await run(['put', '-r', dir, 'first']), 0, 3);

  // Someone else stores other bytes of the same size under first/b.txt.
  const other = join(server.scratch, 'other-b.txt');
  writeFileSync(other, 'CONTENT OF B.TXT');
  expect((await run(['put', other, 'first/b.txt'])).code).toBe(0);
  expectRun(await run(['put', '-r', dir, 'first']), 1, 2);
  expectMirror(dir, 'first');

  expectRun(await run(['put', '-r', '--hash', 'blake3', dir, 'third']), 3, 0);
  expect(recordedNames(dir, 'blake3')).toEqual(['a.txt', 'b.txt', 'c.txt']);
  expectRun(await run(['put', '-r', '--hash', 'blake3', dir, 'third']), 0, 3);
  sameSizeRewrite(join(root, 'c.txt'), 'CONTENT OF C.TXT');
  expectRun(await run(['put', '-r', '--hash', 'blake3', dir, 'third']), 1, 2);
  expectMirror(dir, 'third');
  // The sha256 cache (a, b, c of the runs to first) knows c.txt's old state only.
  expectRun(await run(['put', '-r', dir, 'first']), 1, 2);
  expectMirror(dir, 'first');
  expectRun(await run(['put', '-r', dir, 'second']), 1, 2);
  expectMirror(dir, 'second');
  // Files stored in a blake3 session have no sha256 digest in the listing: sent again, never skipped.
  expectRun(await run(['put', '-r', dir, 'third']), 3, 0);
  expectMirror(dir, 'third');
  expectRun(await run(['put', '-r', dir, 'third']), 0, 3);
}, 60_000);

test('broken, planted or unusable caches never break put -r nor hide a change', async () => {
  // Would catch: a cache read that throws on garbage (put -r fails), a record trusted from a folder or
  // file others can write (onlyMine), a cache write failure (ENOSPC, read-only) that fails the run.
  const dir = 'tamper';
  const root = join(server.scratch, dir);
  mkdirSync(root);
  writeFileSync(join(root, 'x.txt'), 'x version 1');
  writeFileSync(join(root, 'y.txt'), 'y version 1');
  await ageFiles();
  expectRun(await run(['put', '-r', dir, dir]), 2, 0);
  const cache = cacheOf(dir)!;
  const good = readFileSync(cache, 'utf8');
  expect(good.split('\n')).toHaveLength(4);

  // A lying record: the current state of x.txt with the digest of the server's (older) copy, as
  // someone else who could write the cache would plant it to keep the change from being sent.
  const plantLie = (target: string): void => {
    const line = good.split('\n').find((l) => l.endsWith(' x.txt'))!;
    const now = lstatSync(join(root, 'x.txt'), { bigint: true });
    const lie = `${sha(join(server.root, dir, 'x.txt'))} ${now.size} ${now.mtimeNs} ${now.ctimeNs} ${now.ino} ${now.dev} x.txt`;
    writeFileSync(target, good.replace(line, lie), { mode: 0o600 });
  };
  let version = 1;
  const changeX = (): void => {
    version++;
    sameSizeRewrite(join(root, 'x.txt'), `X VERSION ${String.fromCharCode(64 + version)}`);
  };

  // The lie works in the user's own cache (by design: --checksum is the way out), so each case below
  // that sends x.txt shows the lie was not believed.
  changeX();
  plantLie(cache);
  expectRun(await run(['put', '-r', dir, dir]), 0, 2);
  expectRun(await run(['put', '-r', '--checksum', dir, dir]), 1, 1);
  expectMirror(dir, dir);

  // Planted where others could write: a world-writable digests/ folder, then a cache file owned by another user, then group-writable.
  const digests = join(cacheDir, 'digests');
  changeX();
  plantLie(cache);
  chmodSync(digests, 0o777);
  expectRun(await run(['put', '-r', dir, dir]), 1, 1);
  expectMirror(dir, dir);
  chmodSync(digests, 0o700);
  if (isRoot) {
    changeX();
    plantLie(cache);
    chownSync(cache, 4242, 4242);
    expectRun(await run(['put', '-r', dir, dir]), 1, 1);
    expectMirror(dir, dir);
    changeX();
    plantLie(cache);
    chownSync(digests, 4242, 4242);
    expectRun(await run(['put', '-r', dir, dir]), 1, 1);
    expectMirror(dir, dir);
    chownSync(digests, 0, 0);
  }
  changeX();
  plantLie(cache);
  chmodSync(cache, 0o620);
  expectRun(await run(['put', '-r', dir, dir]), 1, 1);
  expectMirror(dir, dir);

  // Garbage, truncated, huge lines, another algorithm's header: each a cache of no use; the change is sent.
  const breakers: [string, () => void][] = [
    ['random bytes', () => writeFileSync(cache, randomBytes(10_000), { mode: 0o600 })],
    ['truncated mid-record', () => writeFileSync(cache, good.slice(0, good.length - 9), { mode: 0o600 })],
    ['a 3 MiB line with no newline', () => writeFileSync(cache, `${good.split('\n')[0]}\n${'f'.repeat(3 * 1024 * 1024)}`, { mode: 0o600 })],
    ['a blake3 header', () => writeFileSync(cache, good.replace(' sha256 ', ' blake3 '), { mode: 0o600 })],
    ['a folder', () => mkdirSync(cache)],
    ['a link to /dev/zero', () => symlinkSync('/dev/zero', cache)],
  ];
  for (const [what, breakIt] of breakers) {
    changeX();
    rmSync(cache, { recursive: true, force: true });
    breakIt();
    const result = await run(['put', '-r', dir, dir]);
    expect({ what, code: result.code, stderr: result.stderr }).toEqual({ what, code: 0, stderr: '' });
    expect({ what, ...summary(result) }).toEqual({ what, files: 1, skipped: 1 });
    expectMirror(dir, dir);
  }
  rmSync(cache, { recursive: true, force: true });

  // digests/ a link to a folder of the user's: not used (lstat), yet the run works.
  const elsewhere = join(server.scratch, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  rmSync(digests, { recursive: true, force: true });
  symlinkSync(elsewhere, digests);
  changeX();
  expectRun(await run(['put', '-r', dir, dir]), 1, 1);
  expectMirror(dir, dir);
  rmSync(digests);

  // RXFER_CACHE_DIR a file, or /dev/null: no cache, no failure.
  const notAFolder = join(server.scratch, 'not-a-folder');
  writeFileSync(notAFolder, 'x');
  for (const where of [notAFolder, '/dev/null']) {
    changeX();
    expectRun(await run(['put', '-r', dir, dir], { RXFER_CACHE_DIR: where }), 1, 1);
    expectMirror(dir, dir);
  }

  if (isRoot) {
    // A read-only file system, then a tiny full one, then one that fills up while the cache is written.
    const mnt = join(server.scratch, 'small-fs');
    try {
      mountTmpfs(mnt, 'size=64k,mode=0700');
      mkdirSync(join(mnt, 'digests'), { mode: 0o700 });
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      changeX();
      expectRun(await run(['put', '-r', dir, dir], { RXFER_CACHE_DIR: mnt }), 1, 1);
      expectMirror(dir, dir);
      execFileSync('mount', ['-o', 'remount,rw', mnt]);
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k', 'status=none'], { stdio: 'pipe' });
      } catch {
        // ENOSPC: the point
      }
      changeX();
      expectRun(await run(['put', '-r', dir, dir], { RXFER_CACHE_DIR: mnt }), 1, 1);
      expectMirror(dir, dir);
      rmSync(join(mnt, 'filler'));
      // 1,200 files: about 150 KiB of records for a 64 KiB file system.
      const many = 'many-small';
      for (let i = 0; i < 1200; i++) {
        mkdirSync(join(server.scratch, many, `f${i % 10}`), { recursive: true });
        writeFileSync(join(server.scratch, many, `f${i % 10}`, `file-with-a-longish-name-${i}.txt`), `many ${i}`);
      }
      await ageFiles();
      expectRun(await run(['put', '-r', many, many], { RXFER_CACHE_DIR: mnt }), 1200, 0);
      expect(readdirSync(join(mnt, 'digests')).filter((name) => name.endsWith('.tmp'))).toEqual([]);
      sameSizeRewrite(join(server.scratch, many, 'f3', 'file-with-a-longish-name-3.txt'), 'MANY 3');
      expectRun(await run(['put', '-r', many, many], { RXFER_CACHE_DIR: mnt }), 1, 1199);
      expectMirror(many, many);
    } finally {
      umount(mnt);
    }
  }
}, 60_000);

test('a folder replaced by a file of its name fails and says so (a file replaced by a link beside it changes nothing)', async () => {
  // Would catch: a run that reports success while a local file was not stored (NAME_CONFLICT hidden).
  const dir = 'shapes';
  const root = join(server.scratch, dir);
  mkdirSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(root, 'd', 'inner.txt'), 'inner');
  writeFileSync(join(root, 'plain.txt'), 'plain v1');
  writeFileSync(join(root, 'target.txt'), 'target!!');
  await ageFiles();
  expectRun(await run(['put', '-r', dir, dir]), 3, 0);
  rmSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(root, 'd'), 'now a file');
  rmSync(join(root, 'plain.txt'));
  symlinkSync('target.txt', join(root, 'plain.txt'));
  const result = await run(['put', '-r', dir, dir]);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toMatch(/NAME_CONFLICT .*shapes\/d/);
  expect(statSync(join(server.root, dir, 'd')).isDirectory()).toBe(true);
}, 30_000);

/** A python3 process holding `path` mapped shared and writable; `write(c)` puts byte `c` at offset 0 through the mapping. */
const mapped = async (path: string): Promise<{ write: (c: string) => Promise<void>; close: () => Promise<void> }> => {
  const script = [
    'import mmap, os, sys',
    'fd = os.open(sys.argv[1], os.O_RDWR)',
    'm = mmap.mmap(fd, os.fstat(fd).st_size)',
    'print("ready", flush=True)',
    'for line in sys.stdin:',
    '    m[0:1] = line.strip().encode()[:1]',
    '    print("wrote", flush=True)',
  ].join('\n');
  const child = spawn('python3', ['-c', script, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      out = out.slice(nl + 1);
      waiters.shift()?.();
    }
  });
  const next = () => new Promise<void>((resolve) => waiters.push(resolve));
  await next();
  return {
    write: async (c) => {
      const done = next();
      child.stdin.write(`${c}\n`);
      await done;
    },
    close: async () => {
      child.stdin.end();
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
};

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import mmap'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();
const shmIsTmpfs = existsSync('/dev/shm') && (() => {
  try {
    return execFileSync('stat', ['-f', '-c', '%T', '/dev/shm']).toString().trim() === 'tmpfs';
  } catch {
    return false;
  }
})();

// A limit, not a bug to fix here (README, "Already there? Skipped."): "any write moves ctime" is
// false for writes through a shared writable mapping. Only the first write fault stamps mtime/ctime;
// later stores to the still-dirty page do not (on tmpfs, never written back, they never will), so a
// re-run takes the unchanged state for unchanged bytes, as git's index and rsync's quick check do.
// `put -r -c` reads every file and sends it.
(hasPython && shmIsTmpfs ? test : test.skip)('a file changed through mmap keeps its stat (the re-run trusts it, as rsync would); put -r -c reads it and sends it', async () => {
  const shm = mkdtempSync('/dev/shm/rxfer-hostile-');
  const link = join(server.scratch, 'shm-tree');
  try {
    symlinkSync(shm, link);
    const file = join(shm, 'mapped.bin');
    writeFileSync(file, Buffer.alloc(4096, 'a'));
    const map = await mapped(file);
    try {
      await map.write('b');
      await ageFiles();
      expectRun(await run(['put', '-r', 'shm-tree', 'shm-tree']), 1, 0);
      const before = lstatSync(file, { bigint: true });
      await map.write('c');
      const after = lstatSync(file, { bigint: true });
      // The attack: other bytes, the same state.
      expect([after.ctimeNs, after.mtimeNs, after.size, after.ino]).toEqual([before.ctimeNs, before.mtimeNs, before.size, before.ino]);
      expect(readFileSync(file).subarray(0, 1).toString()).toBe('c');
      expectRun(await run(['put', '-r', '-c', 'shm-tree', 'shm-tree']), 1, 0);
      expectMirror('shm-tree', 'shm-tree');
    } finally {
      await map.close();
    }
  } finally {
    rmSync(shm, { recursive: true, force: true });
  }
}, 30_000);

// Found by this attack (fixed in local-tree-walk.ts): two local names that are one remote name. put -r
// sent both to it, the second over the first, and reported "2 files" with exit 0: one local file was
// not on the server, and success was reported for it. Now refused before anything is sent.
test('an NFC and an NFD spelling of one name in one folder: NAME_CONFLICT naming both, nothing sent', async () => {
  const dir = 'nfc-nfd';
  const root = join(server.scratch, dir);
  mkdirSync(root);
  writeFileSync(join(root, 'a.txt'), 'sent only if the whole tree can be');
  writeFileSync(join(root, '\u00e9.txt'), 'NFC1');
  writeFileSync(join(root, 'e\u0301.txt'), 'NFD2');
  const result = await run(['put', '-r', dir, dir]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('ERR NAME_CONFLICT');
  expect(result.stderr).toContain('are one name on the server');
  expect(existsSync(join(server.root, dir))).toBe(false);
}, 30_000);

// Found by this attack (fixed in local-tree-walk.ts): readdir turned the byte 0xff into U+FFFD, so the
// path built from it named the sibling really called U+FFFD: that file was sent twice, the 0xff one
// never, and put -r reported "2 files". Now a name that is not UTF-8 is refused before anything is sent.
test('a non-UTF-8 name beside the name U+FFFD: NAME_INVALID naming it (escaped), nothing sent', async () => {
  const dir = 'not-utf8';
  const root = Buffer.from(join(server.scratch, dir));
  mkdirSync(root);
  writeFileSync(Buffer.concat([root, Buffer.from('/\xff', 'latin1')]), 'AAAA');
  writeFileSync(Buffer.concat([root, Buffer.from('/\uFFFD', 'utf8')]), 'BBBB');
  const result = await run(['put', '-r', dir, dir]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('ERR NAME_INVALID');
  expect(result.stderr).toContain('\\xff cannot be sent: its name is not valid UTF-8');
  expect(existsSync(join(server.root, dir))).toBe(false);
}, 30_000);
