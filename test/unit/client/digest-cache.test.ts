import { appendFileSync, chmodSync, chownSync, closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestCache, defaultCacheDir, recordable, stateOf, type FileState } from '../../../src/client/digest-cache';

/**
 * The client's digest cache (src/client/digest-cache.ts) on real files in a temporary folder: what
 * it records and when it refuses to, that a record answers only for exactly the state it was made
 * for, the order records are written in, and that a cache it cannot read or write is simply none.
 * The racy margin is shortened to MARGIN_MS here (the CLI uses 2 s); the tests wait past it for real.
 */

const MARGIN_MS = 40;
const DIGEST_A = 'a'.repeat(64);
const DIGEST_B = 'b'.repeat(64);

let work: string;
let tree: string;
let cacheDir: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'rxfer-digest-cache-'));
  tree = join(work, 'tree');
  cacheDir = join(work, 'cache');
  mkdirSync(tree);
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;
const stateAt = (name: string): FileState => stateOf(lstatSync(join(tree, name), { bigint: true }));
const open = (options: { trustOld?: boolean } = {}) => DigestCache.open(tree, 'sha256', { dir: cacheDir, racyMarginMs: MARGIN_MS, ...options })!;
const cacheFiles = () => readdirSync(join(cacheDir, 'digests'));
const cacheText = () => readFileSync(join(cacheDir, 'digests', cacheFiles().find((name) => !name.endsWith('.tmp'))!), 'utf8');

/** Files written, then aged past the margin (their ctime is then older than any later "seen at"). */
const agedFiles = async (names: readonly string[]): Promise<void> => {
  for (const name of names) {
    mkdirSync(join(tree, name, '..'), { recursive: true });
    writeFileSync(join(tree, name), `content of ${name}`);
  }
  await sleep(MARGIN_MS * 3);
};

/** One run that records `digest` for each name, in order, then commits. */
const recordRun = (entries: readonly [string, string][]): void => {
  const cache = open();
  const seenAt = nowNs();
  for (const [name, digest] of entries) cache.record(cache.place(), name, join(tree, name), stateAt(name), seenAt, digest);
  cache.commit();
};

test('a digest recorded for an unchanged, old enough file is found by the next run; another name or a changed state is not', async () => {
  await agedFiles(['a.txt', 'b.txt']);
  recordRun([['a.txt', DIGEST_A], ['b.txt', DIGEST_B]]);
  const next = open();
  expect(next.find('a.txt', stateAt('a.txt'))?.digest).toBe(DIGEST_A);
  // b.txt's state with one field off (its size): no answer.
  expect(next.find('b.txt', { ...stateAt('b.txt'), size: stateAt('b.txt').size + 1n })).toBeUndefined();
  next.commit();
});

test('a file rewritten with the same size and its mtime set back to the nanosecond is not found: ctime moved', async () => {
  await agedFiles(['a.txt']);
  recordRun([['a.txt', DIGEST_A]]);
  const before = stateAt('a.txt');
  await sleep(MARGIN_MS);
  writeFileSync(join(tree, 'a.txt'), 'CONTENT OF a.txt');
  // GNU touch sets a time to the nanosecond (utimes from Node keeps only about a microsecond).
  const seconds = before.mtimeNs / 1_000_000_000n;
  const nanos = String(before.mtimeNs % 1_000_000_000n).padStart(9, '0');
  execFileSync('touch', ['-m', '-d', `@${seconds}.${nanos}`, join(tree, 'a.txt')]);
  const after = stateAt('a.txt');
  expect({ size: after.size, mtimeNs: after.mtimeNs, ino: after.ino }).toEqual({ size: before.size, mtimeNs: before.mtimeNs, ino: before.ino });
  expect(after.ctimeNs).not.toBe(before.ctimeNs);
  expect(open().find('a.txt', after)).toBeUndefined();
});

test('a file replaced by another (rename over it) is not found: another inode', async () => {
  await agedFiles(['a.txt', 'other.txt']);
  recordRun([['a.txt', DIGEST_A]]);
  const { renameSync } = require('node:fs') as typeof import('node:fs');
  renameSync(join(tree, 'other.txt'), join(tree, 'a.txt'));
  expect(open().find('a.txt', stateAt('a.txt'))).toBeUndefined();
});

test('a state younger than the racy margin when it was seen is not recorded (it is hashed again next time)', async () => {
  writeFileSync(join(tree, 'young.txt'), 'young');
  const cache = open();
  cache.record(cache.place(), 'young.txt', join(tree, 'young.txt'), stateAt('young.txt'), nowNs(), DIGEST_A);
  cache.commit();
  expect(cacheText().split('\n').filter(Boolean)).toHaveLength(1); // the header alone
  expect(open().find('young.txt', stateAt('young.txt'))).toBeUndefined();
});

test('recordable: a ctime strictly before the bound and finer than a millisecond (whole-second file systems are always read)', () => {
  const state = (ctimeNs: bigint): FileState => ({ size: 1n, mtimeNs: ctimeNs, ctimeNs, ino: 1n, dev: 1n });
  const bound = 1_700_000_000_123_456_789n;
  expect(recordable(state(bound - 1n), bound)).toBe(true);
  expect(recordable(state(bound), bound)).toBe(false);
  expect(recordable(state(bound + 1n), bound)).toBe(false);
  // Whole seconds (FAT, ext3) and whole milliseconds: never recorded, however old.
  expect(recordable(state(1_600_000_000_000_000_000n), bound)).toBe(false);
  expect(recordable(state(1_600_000_000_001_000_000n), bound)).toBe(false);
  expect(recordable(state(1_600_000_000_001_000_001n), bound)).toBe(true);
});

test('a file that changed between being seen and being recorded is not recorded', async () => {
  await agedFiles(['a.txt']);
  const seen = stateAt('a.txt');
  const seenAt = nowNs();
  appendFileSync(join(tree, 'a.txt'), 'more');
  const cache = open();
  cache.record(cache.place(), 'a.txt', join(tree, 'a.txt'), seen, seenAt, DIGEST_A);
  cache.commit();
  expect(open().find('a.txt', seen)).toBeUndefined();
  expect(cacheText()).not.toContain('a.txt');
});

test('recordRead (bytes the caller read in that state) records without looking again, under the same rules', async () => {
  await agedFiles(['a', 'b']);
  const cache = open();
  const seenAt = nowNs();
  const a = stateAt('a');
  // Changed after being read: recordRead takes the caller's word, record looks and refuses.
  appendFileSync(join(tree, 'a'), 'later');
  appendFileSync(join(tree, 'b'), 'later');
  cache.recordRead(cache.place(), 'a', a, seenAt, DIGEST_A);
  cache.record(cache.place(), 'b', join(tree, 'b'), { ...a, ino: stateAt('b').ino }, seenAt, DIGEST_B);
  cache.recordRead(cache.place(), 'fresh', stateAt('a'), seenAt, DIGEST_B);
  cache.recordRead(cache.place(), 'line\nbreak', a, seenAt, DIGEST_B);
  cache.commit();
  expect(cacheText().split('\n').slice(1).filter(Boolean)).toEqual([`${DIGEST_A} ${a.size} ${a.mtimeNs} ${a.ctimeNs} ${a.ino} ${a.dev} a`]);
});

test('records settled out of order are written in place order; a skipped place leaves no record', async () => {
  await agedFiles(['a', 'b', 'c', 'd']);
  const cache = open();
  const seenAt = nowNs();
  const places = ['a', 'b', 'c', 'd'].map((name) => [name, cache.place()] as const);
  const put = ([name, at]: readonly [string, number]) => cache.record(at, name, join(tree, name), stateAt(name), seenAt, DIGEST_A);
  put(places[3]!);
  put(places[1]!);
  cache.skip(places[2]![1]);
  put(places[0]!);
  cache.commit();
  const names = cacheText().split('\n').slice(1).filter(Boolean).map((line) => line.split(' ').pop());
  expect(names).toEqual(['a', 'b', 'd']);
});

test('the cursor reads forward in walk order: names not in the cache are passed over, later ones still found', async () => {
  await agedFiles(['a-b', 'a.txt', 'a/x', 'm/n/o', 'z']);
  // compareSegments order (a folder's names after its own name's prefix): a, a/x, a-b, a.txt, m/n/o, z.
  recordRun([['a/x', DIGEST_A], ['a.txt', DIGEST_B], ['z', DIGEST_A]]);
  const next = open();
  expect(next.find('a/x', stateAt('a/x'))?.digest).toBe(DIGEST_A);
  expect(next.find('a-b', stateAt('a-b'))).toBeUndefined();
  expect(next.find('a.txt', stateAt('a.txt'))?.digest).toBe(DIGEST_B);
  expect(next.find('m/n/o', stateAt('m/n/o'))).toBeUndefined();
  expect(next.find('z', stateAt('z'))?.digest).toBe(DIGEST_A);
});

test('names with spaces and beyond ASCII survive, across read chunks (64 KiB); a name with a line break is never recorded', async () => {
  const names = Array.from({ length: 700 }, (_, i) => `dossier ${String(i).padStart(4, '0')} — naïve ${'é'.repeat(i % 7)}.txt`);
  await agedFiles([...names, 'two\nlines']);
  recordRun([...names.map((name) => [name, DIGEST_A] as [string, string]), ['two\nlines', DIGEST_B]]);
  expect(Buffer.byteLength(cacheText())).toBeGreaterThan(64 * 1024);
  const next = open();
  for (const name of names) expect(next.find(name, stateAt(name))?.digest).toBe(DIGEST_A);
  expect(cacheText()).not.toContain('two\nlines');
});

/**
 * A cache of one run of file `a`, rewritten by hand: its header and ≈ 60,000 bytes of records
 * (`f00000`…), and `line(name)`, a record with a's state (the cursor compares names and state text; no
 * file is looked at), to go on with.
 */
const handMadeCache = async (): Promise<{ text: string; line: (name: string) => string }> => {
  await agedFiles(['a']);
  recordRun([['a', DIGEST_A]]);
  const [header, record] = cacheText().split('\n');
  const line = (name: string) => `${DIGEST_A} ${record!.split(' ').slice(1, 6).join(' ')} ${name}\n`;
  let text = `${header}\n`;
  for (let i = 0; Buffer.byteLength(text) < 60_000; i++) text += line(`f${String(i).padStart(5, '0')}`);
  return { text, line };
};

test('a record is read whole wherever a 64 KiB read cuts the file: inside a UTF-8 character, or in a line longer than two reads', async () => {
  const made = await handMadeCache();
  const { line } = made;
  let { text } = made;
  // A name padded so that its "é" (2 bytes in UTF-8) begins at byte 65,535: the first read ends inside it.
  const before = Buffer.byteLength(text) + Buffer.byteLength(line('')) - 1;
  const split = `g${'x'.repeat(65_535 - before - 1)}é.txt`;
  const long = `p/${'y'.repeat(150_000)}`;
  text += line(split) + line(long) + line('z');
  writeFileSync(join(cacheDir, 'digests', cacheFiles()[0]!), text);
  expect(Buffer.from(text).subarray(65_535, 65_537)).toEqual(Buffer.from('é'));
  const next = open();
  for (const name of ['f00000', split, long, 'z']) expect(next.find(name, stateAt('a'))?.digest).toBe(DIGEST_A);
});

test('an empty line that begins a 64 KiB read is skipped as garbage, and the records of that read after it are found', async () => {
  const made = await handMadeCache();
  const { line } = made;
  let { text } = made;
  // A last record padded to end exactly at byte 65,536: the second read begins with the empty line.
  text += line(`g${'x'.repeat(65_536 - Buffer.byteLength(text) - Buffer.byteLength(line('')) - 1)}`);
  expect(Buffer.byteLength(text)).toBe(65_536);
  text += '\n' + line('y') + line('z');
  writeFileSync(join(cacheDir, 'digests', cacheFiles()[0]!), text);
  const next = open();
  expect(next.find('y', stateAt('a'))?.digest).toBe(DIGEST_A);
  expect(next.find('z', stateAt('a'))?.digest).toBe(DIGEST_A);
});

test('records are written in batches: a write that would fail is not tried for each record (the cache gives up only at a flush)', async () => {
  await agedFiles(['a', 'b']);
  const cache = open();
  // The cache's output becomes a device that refuses every write (ENOSPC): a record written at once would fail there.
  const internals = cache as unknown as { out: number };
  closeSync(internals.out);
  internals.out = openSync('/dev/full', 'w');
  const seenAt = nowNs();
  expect(() => cache.record(cache.place(), 'a', join(tree, 'a'), stateAt('a'), seenAt, DIGEST_A)).not.toThrow();
  expect(() => cache.record(cache.place(), 'b', join(tree, 'b'), stateAt('b'), seenAt, DIGEST_B)).not.toThrow();
  // The commit's flush meets the failure and keeps no cache (the run's result never depends on it).
  cache.commit();
  expect(cacheFiles().filter((name) => !name.endsWith('.tmp'))).toEqual([]);
});

test('a found record is used up: the walk asks for each name once, and the next name is still found', async () => {
  await agedFiles(['a', 'b']);
  recordRun([['a', DIGEST_A], ['b', DIGEST_B]]);
  const next = open();
  expect(next.find('a', stateAt('a'))?.digest).toBe(DIGEST_A);
  expect(next.find('a', stateAt('a'))).toBeUndefined();
  expect(next.find('b', stateAt('b'))?.digest).toBe(DIGEST_B);
});

test('carry keeps a found record as it was; a run commits only what it saw, so removed files drop out', async () => {
  await agedFiles(['a', 'b']);
  recordRun([['a', DIGEST_A], ['b', DIGEST_B]]);
  const first = cacheText();
  const next = open();
  const found = next.find('b', stateAt('b'))!;
  next.carry(next.place(), found);
  next.commit();
  expect(cacheText()).toBe(`${first.split('\n')[0]}\n${first.split('\n')[2]}\n`);
});

test('--checksum (trustOld: false) finds nothing, yet writes this run`s records', async () => {
  await agedFiles(['a']);
  recordRun([['a', DIGEST_A]]);
  const distrust = open({ trustOld: false });
  expect(distrust.find('a', stateAt('a'))).toBeUndefined();
  distrust.record(distrust.place(), 'a', join(tree, 'a'), stateAt('a'), nowNs(), DIGEST_B);
  distrust.commit();
  expect(open().find('a', stateAt('a'))?.digest).toBe(DIGEST_B);
});

test('a cache of garbage, of another version or algorithm, or a line cut short answers nothing and is replaced', async () => {
  await agedFiles(['a']);
  recordRun([['a', DIGEST_A]]);
  const path = join(cacheDir, 'digests', cacheFiles()[0]!);
  const good = cacheText();
  for (const bad of ['\u0000\u0001garbage', good.replace('rxfer-digest-cache 1', 'rxfer-digest-cache 2'), good.replace('sha256', 'blake3'), good.slice(0, -20)]) {
    writeFileSync(path, bad);
    const cache = open();
    expect(cache.find('a', stateAt('a'))).toBeUndefined();
    cache.record(cache.place(), 'a', join(tree, 'a'), stateAt('a'), nowNs(), DIGEST_A);
    cache.commit();
    expect(cacheText()).toBe(good);
  }
});

test('one cache per folder and algorithm: another tree or algorithm does not see these records', async () => {
  await agedFiles(['a']);
  recordRun([['a', DIGEST_A]]);
  expect(DigestCache.open(tree, 'blake3', { dir: cacheDir, racyMarginMs: MARGIN_MS })!.find('a', stateAt('a'))).toBeUndefined();
  const other = join(work, 'other');
  mkdirSync(other);
  expect(DigestCache.open(other, 'sha256', { dir: cacheDir, racyMarginMs: MARGIN_MS })!.find('a', stateAt('a'))).toBeUndefined();
  // The same folder by another path (with a trailing slash and a ".." in it) is the same cache.
  expect(DigestCache.open(`${other}/../tree/`, 'sha256', { dir: cacheDir, racyMarginMs: MARGIN_MS })!.find('a', stateAt('a'))?.digest).toBe(DIGEST_A);
});

test('a cache folder that cannot be made or written is no cache, never a failure', async () => {
  writeFileSync(join(work, 'a-file'), '');
  expect(DigestCache.open(tree, 'sha256', { dir: join(work, 'a-file') })).toBeUndefined();
  // A folder there but unwritable (root ignores modes, so a file stands where the temporary file would go).
  await agedFiles(['a']);
  const cache = open();
  rmSync(join(cacheDir, 'digests'), { recursive: true });
  writeFileSync(join(cacheDir, 'digests'), 'not a folder');
  cache.record(cache.place(), 'a', join(tree, 'a'), stateAt('a'), nowNs(), DIGEST_A);
  expect(() => cache.commit()).not.toThrow();
});

test('a temporary file a killed run left a day ago and a cache untouched for 30 days are removed; recent ones are kept', async () => {
  mkdirSync(join(cacheDir, 'digests'), { recursive: true });
  const file = (name: string, ageHours: number) => {
    const path = join(cacheDir, 'digests', name);
    writeFileSync(path, '');
    const then = new Date(Date.now() - ageHours * 3600 * 1000);
    utimesSync(path, then, then);
  };
  file('x.sha256.123.tmp', 25);
  file('y.sha256.456.tmp', 23);
  file('old.sha256', 31 * 24);
  file('recent.blake3', 29 * 24);
  open().commit();
  expect(cacheFiles()).toEqual(expect.arrayContaining(['recent.blake3', 'y.sha256.456.tmp']));
  expect(cacheFiles()).not.toContain('x.sha256.123.tmp');
  expect(cacheFiles()).not.toContain('old.sha256');
});

test('a cache folder or file others may write is not trusted (a planted record could hide a change)', async () => {
  await agedFiles(['a']);
  recordRun([['a', DIGEST_A]]);
  const folder = join(cacheDir, 'digests');
  chmodSync(folder, 0o777);
  expect(open({})).toBeUndefined();
  chmodSync(folder, 0o700);
  const file = join(folder, cacheFiles()[0]!);
  chmodSync(file, 0o666);
  expect(open().find('a', stateAt('a'))).toBeUndefined();
  chmodSync(file, 0o600);
  expect(open().find('a', stateAt('a'))?.digest).toBe(DIGEST_A);
  // Owned by another user: root hands it over, as another user's planted file would be.
  chownSync(file, 12345, 12345);
  expect(open().find('a', stateAt('a'))).toBeUndefined();
});

test('the cache file and folder are the user`s alone (0600, 0700)', async () => {
  await agedFiles(['a']);
  recordRun([['a', DIGEST_A]]);
  expect(lstatSync(join(cacheDir, 'digests')).mode & 0o777).toBe(0o700);
  expect(lstatSync(join(cacheDir, 'digests', cacheFiles()[0]!)).mode & 0o777).toBe(0o600);
});

test('where caches live: RXFER_CACHE_DIR, else XDG_CACHE_HOME/rxfer, else ~/.cache/rxfer', () => {
  expect(defaultCacheDir({ RXFER_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c');
  expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/rxfer');
  expect(defaultCacheDir({})).toBe(join(require('node:os').homedir(), '.cache', 'rxfer'));
});

describe('what the mutation run of digest-cache.ts asked for (test/MUTATION.md, eleventh session)', () => {
  test('record looks again: a same-size rewrite with its mtime set back after the file was seen is not recorded (only ctime tells)', async () => {
    await agedFiles(['a']);
    const seen = stateAt('a');
    const seenAt = nowNs();
    writeFileSync(join(tree, 'a'), 'CONTENT OF a');
    const nanos = String(seen.mtimeNs % 1_000_000_000n).padStart(9, '0');
    execFileSync('touch', ['-m', '-d', `@${seen.mtimeNs / 1_000_000_000n}.${nanos}`, join(tree, 'a')]);
    expect({ ...stateAt('a'), ctimeNs: seen.ctimeNs }).toEqual(seen);
    const cache = open();
    cache.record(cache.place(), 'a', join(tree, 'a'), seen, seenAt, DIGEST_A);
    cache.commit();
    expect(cacheText()).not.toContain(' a\n');
  });

  test('a file gone before record looks again is not recorded', async () => {
    await agedFiles(['a']);
    const seen = stateAt('a');
    rmSync(join(tree, 'a'));
    const cache = open();
    cache.record(cache.place(), 'a', join(tree, 'a'), seen, nowNs(), DIGEST_A);
    cache.commit();
    expect(cacheText().split('\n').filter(Boolean)).toHaveLength(1);
  });

  test('an empty or damaged line in the middle is passed over: the records after it are still found', async () => {
    await agedFiles(['a', 'b', 'c']);
    recordRun([['a', DIGEST_A], ['b', DIGEST_B], ['c', DIGEST_A]]);
    const path = join(cacheDir, 'digests', cacheFiles()[0]!);
    const [header, a, b, c] = cacheText().split('\n');
    writeFileSync(path, `${header}\n${a}\n\nnot a record\n${b!.slice(0, 30)}\n${c}\n`);
    const next = open();
    expect(next.find('a', stateAt('a'))?.digest).toBe(DIGEST_A);
    expect(next.find('b', stateAt('b'))).toBeUndefined();
    expect(next.find('c', stateAt('c'))?.digest).toBe(DIGEST_A);
  });

  test('the caches of two folders live side by side: each run of one keeps the other`s', async () => {
    await agedFiles(['a']);
    recordRun([['a', DIGEST_A]]);
    const other = join(work, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'a'), 'other a');
    await sleep(MARGIN_MS * 3);
    const second = DigestCache.open(other, 'sha256', { dir: cacheDir, racyMarginMs: MARGIN_MS })!;
    second.record(second.place(), 'a', join(other, 'a'), stateOf(lstatSync(join(other, 'a'), { bigint: true })), nowNs(), DIGEST_B);
    second.commit();
    expect(cacheFiles().filter((name) => !name.endsWith('.tmp'))).toHaveLength(2);
    expect(open().find('a', stateAt('a'))?.digest).toBe(DIGEST_A);
  });

  test('a commit that cannot rename (a folder where the cache goes) leaves no temporary file and does not throw', async () => {
    await agedFiles(['a']);
    recordRun([['a', DIGEST_A]]);
    const path = join(cacheDir, 'digests', cacheFiles()[0]!);
    rmSync(path);
    mkdirSync(join(path, 'inside'), { recursive: true });
    const cache = open();
    cache.record(cache.place(), 'a', join(tree, 'a'), stateAt('a'), nowNs(), DIGEST_A);
    expect(() => cache.commit()).not.toThrow();
    expect(cacheFiles().filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  test('a folder in the cache folder, however old, is left alone by the sweep, and the cache still works', async () => {
    mkdirSync(join(cacheDir, 'digests', 'a-folder'), { recursive: true });
    const longAgo = new Date(Date.now() - 40 * 24 * 3600 * 1000);
    utimesSync(join(cacheDir, 'digests', 'a-folder'), longAgo, longAgo);
    await agedFiles(['a']);
    recordRun([['a', DIGEST_A]]);
    expect(cacheFiles()).toContain('a-folder');
    expect(open().find('a', stateAt('a'))?.digest).toBe(DIGEST_A);
  });
});
