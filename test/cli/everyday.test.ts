import { spawn } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, ensureBuilt, rxfer, type CliResult } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Issue 19: the CLI does what cp, scp and rsync users expect around folders, trailing slashes, links,
 * several sources, stdin/stdout and the everyday verbs. One real server for the file; each test
 * uses names of its own, in fresh local folders, and every command runs as a fresh process.
 */
let server: TestServer;
let run: (args: string[], cwd?: string) => Promise<CliResult>;

beforeAll(async () => {
  ensureBuilt();
  server = await startTestServer();
  run = (args, cwd = server.scratch) => rxfer(args, { cwd, env: { RXFER_PORT: String(server.port) } });
}, 120_000);
afterAll(() => server.close());

/** A fresh local folder for one test, with the given files. */
const folder = async (name: string, files: Record<string, string> = {}): Promise<string> => {
  const dir = join(server.scratch, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    await mkdir(join(dir, file, '..'), { recursive: true });
    await writeFile(join(dir, file), text);
  }
  return dir;
};

/** A file stored on the server directly (the storage is a plain folder). */
const stored = async (name: string, text: string): Promise<void> => {
  await mkdir(join(server.root, name, '..'), { recursive: true });
  await writeFile(join(server.root, name), text);
};

/** The CLI with bytes on its standard input. */
const runWithInput = (args: string[], input: Buffer, cwd: string): Promise<CliResult> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, RXFER_PORT: String(server.port) } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });

describe('get: folders, trailing slashes and links', () => {
  test('a missing folder named with a trailing "/" is an error, never a file of that name; without "/" it is the file name (cp)', async () => {
    await stored('g1/h.txt', 'hello\n');
    const dir = await folder('g1');
    await mkdir(join(dir, 'into'));
    const [slash, deeper] = await Promise.all([run(['get', 'g1/h.txt', 'nosuchdir/'], dir), run(['get', 'g1/h.txt', 'a/b/c'], dir)]);
    expect(slash.code).toBe(1);
    expect(slash.stderr).toContain('ERR LOCAL_IO there is no folder nosuchdir/');
    expect(slash.stderr).toContain('mkdir -p nosuchdir/');
    expect(deeper.code).toBe(1);
    expect(deeper.stderr).toContain('there is no folder a/b');
    expect(deeper.stderr).not.toMatch(/ENOTDIR|ENOENT|INTERNAL|staging/);
    expect(await readdir(dir)).toEqual(['into']);

    const plain = await run(['get', 'g1/h.txt', 'newname', '-q'], dir);
    expect(plain).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await readFile(join(dir, 'newname'), 'utf8')).toBe('hello\n');

    expect((await run(['get', 'g1/h.txt', 'into/', '-q'], dir)).code).toBe(0);
    expect(await readFile(join(dir, 'into', 'h.txt'), 'utf8')).toBe('hello\n');

    const underFile = await run(['get', 'g1/h.txt', 'newname/x'], dir);
    expect(underFile.code).toBe(1);
    expect(underFile.stderr).toContain('newname is a file, not a folder');
  });

  test('a link to a file is written through (the link stays); a dangling link is refused and kept', async () => {
    await stored('g2/new.txt', 'new content\n');
    const dir = await folder('g2', { 'real.txt': 'old\n' });
    await symlink('real.txt', join(dir, 'link.txt'));
    const through = await run(['get', 'g2/new.txt', 'link.txt'], dir);
    expect(through.code).toBe(0);
    expect(lstatSync(join(dir, 'link.txt')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'link.txt'))).toBe('real.txt');
    expect(await readFile(join(dir, 'real.txt'), 'utf8')).toBe('new content\n');

    await symlink('missing.txt', join(dir, 'dangling'));
    const dangling = await run(['get', 'g2/new.txt', 'dangling'], dir);
    expect(dangling.code).toBe(1);
    expect(dangling.stderr).toContain('dangling is a symbolic link to missing.txt, which does not exist');
    expect(lstatSync(join(dir, 'dangling')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(dir, 'missing.txt'))).toBe(false);
  });

  test('"-" and /dev/stdout write to standard output (the summary goes to stderr); /dev/stdout stays a link', async () => {
    await stored('g3/log.txt', 'line 1\nline 2\n');
    const dash = await run(['get', 'g3/log.txt', '-']);
    expect(dash.code).toBe(0);
    expect(dash.stdout).toBe('line 1\nline 2\n');
    expect(dash.stderr).toMatch(/^get g3\/log\.txt → \(stdout\) {2}14 B/);

    // Standard output redirected to a regular file, as `rxfer get x /dev/stdout > out` does.
    const dir = await folder('g3');
    const out = join(dir, 'out.txt');
    const fd = openSync(out, 'w');
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'get', 'g3/log.txt', '/dev/stdout', '-q'], { env: { ...process.env, RXFER_PORT: String(server.port) }, stdio: ['ignore', fd, 'ignore'] });
      child.on('close', resolve);
    });
    closeSync(fd);
    expect(code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('line 1\nline 2\n');
    expect(lstatSync('/dev/stdout').isSymbolicLink()).toBe(true);
  });

  test('get -r of a missing name or of a file fails in words and leaves no folder behind', async () => {
    await stored('g4/file.txt', 'x');
    const dir = await folder('g4');
    const [missing, file] = await Promise.all([run(['get', '-r', 'g4/nosuch', 'dl'], dir), run(['get', '-r', 'g4/file.txt', 'dl2'], dir)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ERR NOT_FOUND there is no file or folder named g4/nosuch on the server');
    expect(file.code).toBe(2);
    expect(file.stderr).toContain('ERR USAGE g4/file.txt is a file, not a folder: get it without -r');
    expect(await readdir(dir)).toEqual([]);
  });

  test('a folder without -r says to add -r, both ways', async () => {
    await stored('g5/album/a.jpg', 'a');
    const dir = await folder('g5', { 'local-album/b.jpg': 'b' });
    const [get, put] = await Promise.all([run(['get', 'g5/album', 'x'], dir), run(['put', 'local-album', 'g5/'], dir)]);
    expect(get.code).toBe(2);
    expect(get.stderr).toContain('g5/album is a folder: add -r');
    expect(put.code).toBe(2);
    expect(put.stderr).toContain('local-album is a folder: add -r to copy a folder and everything in it (rxfer put -r local-album g5/)');
    expect(existsSync(join(server.root, 'g5', 'local-album'))).toBe(false);
  });
});

describe('put: several sources, folders, stdin', () => {
  test('several files go into the folder named last (a trailing "/" or an existing remote folder)', async () => {
    const dir = await folder('p1', { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });
    const many = await run(['put', 'a.txt', 'b.txt', 'c.txt', 'p1/photos/'], dir);
    expect(many.code).toBe(0);
    expect(many.stdout.trim().split('\n')).toHaveLength(3);
    for (const name of ['a', 'b', 'c']) expect(await readFile(join(server.root, 'p1', 'photos', `${name}.txt`), 'utf8')).toBe(name);

    // An existing remote folder, named without "/": into it, as cp does.
    await mkdir(join(server.root, 'p1', 'existing'));
    expect((await run(['put', 'a.txt', 'p1/existing', '-q'], dir)).code).toBe(0);
    expect(await readFile(join(server.root, 'p1', 'existing', 'a.txt'), 'utf8')).toBe('a');

    const notFolder = await run(['put', 'a.txt', 'b.txt', 'c.txt', 'p1/nofolder'], dir);
    expect(notFolder.code).toBe(2);
    expect(notFolder.stderr).toContain('several files go into a folder');
    expect(existsSync(join(server.root, 'p1', 'nofolder'))).toBe(false);
  });

  test('put a b with two local files is refused (not a silent upload of a as b); -T asks for exactly that', async () => {
    const dir = await folder('p2', { 'a.txt': 'a', 'b.txt': 'b' });
    const both = await run(['put', 'a.txt', 'b.txt'], dir);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('b.txt is a local file too');
    expect(both.stderr).toContain('add -T');
    expect(existsSync(join(server.root, 'b.txt'))).toBe(false);
    expect((await run(['put', 'a.txt', 'p2-b.txt', '-q'], dir)).code).toBe(0);
    expect((await run(['put', '-T', 'a.txt', 'b.txt', '-q'], dir)).code).toBe(0);
    expect(await readFile(join(server.root, 'b.txt'), 'utf8')).toBe('a');
  });

  test('"-" reads standard input; it needs a remote name', async () => {
    const dir = await folder('p3');
    const data = Buffer.from('piped bytes\n'.repeat(1000));
    const piped = await runWithInput(['put', '-', 'p3/backup.tar'], data, dir);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toMatch(/^put \(stdin\) → p3\/backup\.tar {2}11\.7 KiB/);
    expect((await readFile(join(server.root, 'p3', 'backup.tar'))).equals(data)).toBe(true);
    const unnamed = await runWithInput(['put', '-'], data, dir);
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toContain('standard input has no file name');
  });

  test('put -r copies empty folders and says which links it skipped (never followed)', async () => {
    const dir = await folder('p4', { 'tree/sub/x.txt': 'x' });
    await mkdir(join(dir, 'tree', 'empty', 'deeper'), { recursive: true });
    await symlink('/etc/passwd', join(dir, 'tree', 'outside'));
    const put = await run(['put', '-r', 'tree', 'p4/'], dir);
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^put -r tree → p4\/tree {2}1 files .* 1 empty folder/);
    expect(put.stderr).toContain('skipped 1 symbolic link(s) or special file(s), which are never followed or sent: tree/outside');
    expect(lstatSync(join(server.root, 'p4', 'tree', 'empty', 'deeper')).isDirectory()).toBe(true);
    expect(existsSync(join(server.root, 'p4', 'tree', 'outside'))).toBe(false);
  });
});

describe('rxfer`s own unfinished downloads in a tree', () => {
  // A download cut in a folder leaves .NAME.rxfer-resume beside NAME. Sent up with the folder and
  // brought back down by get -r beside NAME, it was taken for NAME's kept bytes: consumed, and
  // when both were in flight at once, renamed onto NAME (hostile pass f).
  test('put -r leaves them out and says so; get -r of a tree holding one leaves it out, says so, and NAME arrives whole', async () => {
    const big = Buffer.alloc(1536 * 1024, 7);
    const dir = await folder('u1', { 'tree/other.txt': 'o', 'tree/.big.bin.rxfer-resume': 'kept bytes of an interrupted download' });
    await writeFile(join(dir, 'tree', 'big.bin'), big);
    const put = await run(['put', '-r', 'tree', 'u1/'], dir);
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^put -r tree → u1\/tree {2}2 files/);
    expect(put.stderr).toContain("left out 1 file(s) named as rxfer's own unfinished downloads (.NAME.rxfer-resume, its .lock, .NAME.rxfer-part-…), never sent: tree/.big.bin.rxfer-resume");
    expect((await readdir(join(server.root, 'u1', 'tree'))).sort()).toEqual(['big.bin', 'other.txt']);

    // One on the server already (an older client sent it): get -r leaves it out, and big.bin is right.
    await stored('u1/tree/.big.bin.rxfer-resume', 'not the bytes of big.bin');
    const out = await folder('u1-out');
    const get = await run(['get', '-r', 'u1/tree', 'here', '--json'], out);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ files: 2, unfinishedLeftOut: 1 });
    expect((await readdir(join(out, 'here', 'tree'))).sort()).toEqual(['big.bin', 'other.txt']);
    expect((await readFile(join(out, 'here', 'tree', 'big.bin'))).equals(big)).toBe(true);
    const told = await run(['get', '-r', 'u1/tree', 'again'], out);
    expect(told.stderr).toContain(`left out 1 file(s) named as rxfer's own unfinished downloads (.NAME.rxfer-resume, its .lock, .NAME.rxfer-part-…), never written by get -r (one would be taken for the kept bytes of its neighbour): ${join(out, 'again', 'tree', '.big.bin.rxfer-resume')}`);
  });
});

describe('ls, mv, rm, mkdir', () => {
  test('ls: a missing name fails, a file shows itself, a folder shows its files and subfolders/', async () => {
    await stored('l1/top.txt', 'top');
    await stored('l1/sub/deep.txt', 'deep');
    const missing = await run(['ls', 'l1/nosuch/']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ERR NOT_FOUND there is no file or folder named l1/nosuch/ on the server');
    const file = await run(['ls', 'l1/top.txt']);
    expect(file.code).toBe(0);
    expect(file.stdout).toMatch(/^ +3 B {2}[0-9a-f]{12} {2}\S+ \S+ {2}l1\/top\.txt\n$/);
    const listing = await run(['ls', 'l1']);
    expect(listing.code).toBe(0);
    expect(listing.stdout.split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/).pop())).toEqual(['l1/sub/', 'l1/top.txt']);
    const json = JSON.parse((await run(['ls', '-r', 'l1', '--json'])).stdout) as { name: string; type: string }[];
    expect(json.map(({ name, type }) => [name, type])).toEqual([['l1/sub', 'folder'], ['l1/sub/deep.txt', 'file'], ['l1/top.txt', 'file']]);
  });

  test('mv onto a taken name names that name; mv FILE folder/ and mv FILE existing-folder move into it', async () => {
    await stored('m1/a.txt', 'a');
    await stored('m1/b.txt', 'b');
    await mkdir(join(server.root, 'm1', 'archive'));
    const taken = await run(['mv', 'm1/a.txt', 'm1/b.txt']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('ERR EXISTS m1/b.txt already exists on the server; mv never replaces a name');
    expect(await run(['mv', 'm1/a.txt', 'm1/archive/'])).toMatchObject({ code: 0, stdout: 'renamed m1/a.txt → m1/archive/a.txt\n' });
    expect(await run(['mv', 'm1/b.txt', 'm1/archive'])).toMatchObject({ code: 0, stdout: 'renamed m1/b.txt → m1/archive/b.txt\n' });
    expect(await readdir(join(server.root, 'm1', 'archive'))).toEqual(['a.txt', 'b.txt']);
    const noFolder = await run(['mv', 'm1/archive/a.txt', 'm1/nosuch/']);
    expect(noFolder.code).toBe(1);
    expect(noFolder.stderr).toContain('there is no folder m1/nosuch/ on the server');
  });

  test('rm -r deletes a tree; rm of a full folder without -r hints -r; rm -f of a missing name is fine', async () => {
    for (let i = 0; i < 12; i++) await stored(`r1/tree/${i % 3}/f${i}.txt`, `${i}`);
    const withoutR = await run(['rm', 'r1/tree']);
    expect(withoutR.code).toBe(2);
    expect(withoutR.stderr).toContain('add -r to delete it and everything in it (rxfer rm -r r1/tree)');
    expect(await run(['rm', '-r', 'r1/tree'])).toMatchObject({ code: 0, stdout: 'deleted r1/tree/ (12 files)\n' });
    expect(existsSync(join(server.root, 'r1', 'tree'))).toBe(false);
    const missing = await run(['rm', 'r1/tree']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('there is no file or folder named r1/tree on the server');
    expect(await run(['rm', '-f', 'r1/tree'])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  test('mkdir acts as mkdir -p: parents made, an existing folder is fine, a file of that name is not', async () => {
    expect(await run(['mkdir', 'k1/a/b'])).toMatchObject({ code: 0, stdout: 'created k1/a/b\n' });
    expect(await run(['mkdir', 'k1/a/b'])).toMatchObject({ code: 0, stdout: 'k1/a/b exists already\n' });
    await stored('k1/file', 'f');
    const onFile = await run(['mkdir', 'k1/file']);
    expect(onFile.code).toBe(1);
    expect(onFile.stderr).toContain('ERR EXISTS k1/file exists and is a file, not a folder');
  });
});
