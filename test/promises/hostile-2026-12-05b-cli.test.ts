import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuilt, rxfer, type CliResult } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Hostile pass 2026-12-05b (issue 18): README promises of the CLI that a careless refactor could
 * break with every other test still passing. The real server, the built CLI as a child process.
 */
let server: TestServer;
let run: (args: string[], cwd?: string) => Promise<CliResult>;

beforeAll(async () => {
  ensureBuilt();
  server = await startTestServer();
  run = (args, cwd = server.scratch) => rxfer(args, { cwd, env: { RXFER_PORT: String(server.port) } });
}, 120_000);
afterAll(() => server.close());

const stored = async (name: string, text: string): Promise<void> => {
  await mkdir(join(server.root, name, '..'), { recursive: true });
  await writeFile(join(server.root, name), text);
};

const localFolder = async (name: string, files: Record<string, string> = {}): Promise<string> => {
  const dir = join(server.scratch, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
};

/**
 * README, "Errors and exit status": "Several files in one command: a file that fails does not stop
 * the others (as with cp); each failure is printed, and the exit status is 1."
 */
describe('several files, one failing: the others are done, the failure printed, exit 1', () => {
  test('get a missing b DIR/', async () => {
    await stored('hb-many/a.txt', 'alpha\n');
    await stored('hb-many/b.txt', 'bravo\n');
    const dir = await localFolder('hb-many-get');
    await mkdir(join(dir, 'in'));
    const result = await run(['get', 'hb-many/a.txt', 'hb-many/missing.txt', 'hb-many/b.txt', 'in/'], dir);
    expect(result.stderr).toContain('ERR NOT_FOUND');
    expect(result.stderr).toContain('missing.txt');
    expect(await readFile(join(dir, 'in', 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(await readFile(join(dir, 'in', 'b.txt'), 'utf8')).toBe('bravo\n');
    expect(result.code).toBe(1);
  });

  test('put a b FOLDER/ where the server refuses one name', async () => {
    // A name the server refuses (the same name, once as a folder, blocks the file) between two good ones.
    await stored('hb-put/clash.txt/inside', 'a folder where the file would go\n');
    const dir = await localFolder('hb-many-put', { 'one.txt': 'one\n', 'clash.txt': 'clash\n', 'two.txt': 'two\n' });
    const result = await run(['put', 'one.txt', 'clash.txt', 'two.txt', 'hb-put/'], dir);
    expect(result.stderr).toMatch(/ERR [A-Z_]+ .*clash\.txt/);
    expect(await readFile(join(server.root, 'hb-put', 'one.txt'), 'utf8')).toBe('one\n');
    expect(await readFile(join(server.root, 'hb-put', 'two.txt'), 'utf8')).toBe('two\n');
    expect(result.code).toBe(1);
  });

  // Found by the same pass: rm, mv and mkdir stopped at the first name that failed (b was left, and "deleted a" never printed).
  test('rm a missing b: a and b deleted, the missing name printed, exit 1', async () => {
    await stored('hb-rm/a', 'a');
    await stored('hb-rm/b', 'b');
    const result = await run(['rm', 'hb-rm/a', 'hb-rm/missing', 'hb-rm/b']);
    expect(result.stderr).toBe('rxfer: ERR NOT_FOUND there is no file or folder named hb-rm/missing on the server\n');
    expect(result.stdout).toBe('deleted hb-rm/a\ndeleted hb-rm/b\n');
    expect(existsSync(join(server.root, 'hb-rm', 'a'))).toBe(false);
    expect(existsSync(join(server.root, 'hb-rm', 'b'))).toBe(false);
    expect(result.code).toBe(1);
  });

  test('mv a missing b FOLDER/: a and b moved, exit 1; --json says ok false on stdout and the error on stderr', async () => {
    await stored('hb-mv/a', 'a');
    await stored('hb-mv/b', 'b');
    await mkdir(join(server.root, 'hb-mv', 'into'));
    const result = await run(['mv', 'hb-mv/a', 'hb-mv/missing', 'hb-mv/b', 'hb-mv/into/', '--json']);
    expect(JSON.parse(result.stdout)).toEqual({ ok: false });
    expect(JSON.parse(result.stderr)).toMatchObject({ code: 'NOT_FOUND', exit: 1 });
    expect(await readFile(join(server.root, 'hb-mv', 'into', 'a'), 'utf8')).toBe('a');
    expect(await readFile(join(server.root, 'hb-mv', 'into', 'b'), 'utf8')).toBe('b');
    expect(result.code).toBe(1);
  });

  test('mkdir a FILE b: a and b made, the file named in the error, exit 1', async () => {
    await stored('hb-mkdir/file', 'not a folder');
    const result = await run(['mkdir', 'hb-mkdir/a', 'hb-mkdir/file', 'hb-mkdir/b']);
    expect(result.stderr).toMatch(/^rxfer: ERR EXISTS hb-mkdir\/file exists and is a file, not a folder\n$/);
    expect(result.stdout).toBe('created hb-mkdir/a\ncreated hb-mkdir/b\n');
    expect(result.code).toBe(1);
  });
});

/**
 * README, "Command line": "-H takes HOST, HOST:PORT, … (a port given both there and in
 * -p/RXFER_PORT, differently, is refused)". errors.test.ts covers -p; this is RXFER_PORT.
 */
test('RXFER_PORT and a different port in -H HOST:PORT: a usage error (exit 2), nothing connects', async () => {
  const result = await rxfer(['stat', 'anything', '-H', `127.0.0.1:${server.port}`], { env: { RXFER_PORT: '9' } });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(`the port is given twice: ${server.port} in -H 127.0.0.1:${server.port} and 9 in RXFER_PORT`);
  // The same port in both places is no conflict.
  await stored('hb-port/same.txt', 'x');
  const same = await rxfer(['stat', 'hb-port/same.txt', '-H', `127.0.0.1:${server.port}`], { env: { RXFER_PORT: String(server.port) } });
  expect(same.code).toBe(0);
});
