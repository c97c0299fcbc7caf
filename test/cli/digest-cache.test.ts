import { lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, rxfer, type CliResult } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';
import { RACY_MARGIN_MS } from '../../src/client/digest-cache';

/**
 * Issue 20: `rxfer put -r` again on an unchanged tree reads no local file, from the digests the
 * CLI's first run recorded (src/client/digest-cache.ts) in RXFER_CACHE_DIR; `-c`/`--checksum` reads
 * every file anyway. Real server, real CLI processes, the CLI's own racy margin (2 s): the files are
 * aged past it before the first run, as a tree a user copies again usually is.
 */
let server: TestServer;
let cacheDir: string;
let run: (args: string[]) => Promise<CliResult>;

beforeAll(async () => {
  ensureBuilt();
  server = await startTestServer();
  cacheDir = join(server.scratch, 'cache');
  run = (args) => rxfer(args, { cwd: server.scratch, env: { RXFER_PORT: String(server.port), RXFER_CACHE_DIR: cacheDir } });
}, 120_000);
afterAll(() => server.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cachePath = () => join(cacheDir, 'digests', readdirSync(join(cacheDir, 'digests')).find((name) => !name.endsWith('.tmp'))!);

test('the re-run skips every file from the cache, a record that lies is believed, and put -r -c (--checksum) reads and sends the file', async () => {
  const tree = join(server.scratch, 'album');
  mkdirSync(join(tree, 'raw'), { recursive: true });
  const files = { 'one.jpg': 'first picture', 'two.jpg': 'second picture', 'raw/three.cr2': 'third picture' };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(tree, name), text);
  await sleep(RACY_MARGIN_MS + 300);

  const first = await run(['put', '-r', 'album', 'album']);
  expect(first.stdout).toMatch(/^put -r album → album {2}3 files/);
  const records = readFileSync(cachePath(), 'utf8').trim().split('\n').slice(1);
  expect(records.map((line) => line.split(' ').pop()).sort()).toEqual(['one.jpg', 'raw/three.cr2', 'two.jpg']);

  const again = await run(['put', '-r', 'album', 'album']);
  expect(again.stdout).toMatch(/0 files .*\(3 already there, skipped\)/);

  // two.jpg changes (same size); the cache is made to claim the new state has the old digest.
  const old = records.find((line) => line.endsWith(' two.jpg'))!;
  writeFileSync(join(tree, 'two.jpg'), 'SECOND PICTURE');
  const now = lstatSync(join(tree, 'two.jpg'), { bigint: true });
  writeFileSync(cachePath(), readFileSync(cachePath(), 'utf8').replace(old, `${old.split(' ')[0]} ${now.size} ${now.mtimeNs} ${now.ctimeNs} ${now.ino} ${now.dev} two.jpg`));
  const trusting = await run(['put', '-r', 'album', 'album']);
  expect(trusting.stdout).toMatch(/\(3 already there, skipped\)/);
  expect(readFileSync(join(server.root, 'album', 'two.jpg'), 'utf8')).toBe('second picture');

  for (const flag of ['-c', '--checksum']) {
    writeFileSync(join(server.root, 'album', 'two.jpg'), 'second picture');
    const checked = await run(['put', '-r', flag, 'album', 'album']);
    expect(checked.stdout).toMatch(/^put -r album → album {2}1 files .*\(2 already there, skipped\)/);
    expect(readFileSync(join(server.root, 'album', 'two.jpg'), 'utf8')).toBe('SECOND PICTURE');
  }
}, 60_000);

test('put --help tells of -c, --checksum', async () => {
  const help = await run(['put', '--help']);
  expect(help.stdout).toMatch(/-c, --checksum\s+with -r: read every local file/);
});
