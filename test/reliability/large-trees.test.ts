import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { BIN, ensureBuilt } from '../helpers/cli';

/**
 * Issue 17, large trees (the bounded form, 2,000 and 10,000 files; `node scripts/large-trees.js` runs 2,000 → 200,000 and
 * prints files/s): `put -r`, `ls` and `get -r` of thousands of small files through real processes,
 * sockets and files. Every file arrives byte-identical, an identical re-run sends nothing, client and
 * server RSS stay bounded, and a folder with more files than `limits.maxListEntries` is listed and
 * downloaded whole (LIST in pages). No timing is asserted: the machine is shared.
 */

const MiB = 1024;
/** Peak RSS allowed (KiB), client and server: an idle server is ≈ 100 MiB here, a CLI ≈ 60 MiB. */
const RSS_BOUND_KIB = 256 * MiB;
/** Files per folder in the nested trees. */
const PER_FOLDER = 500;
/** The server's LIST limit, below the flat folder's size. */
const MAX_LIST_ENTRIES = 1000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly maxRssKiB: number;
}

/** The CLI as typed, with its peak RSS reported by a preload (support/print-max-rss.js). */
const cli = (args: string[]): Promise<Run> =>
  new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['RXFER_HOST'];
    delete env['RXFER_PORT'];
    const preload = join(__dirname, 'support', 'print-max-rss.js');
    execFile(process.execPath, ['-r', preload, BIN, ...args], { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const rss = /max-rss-kib (\d+)/.exec(stderr);
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr, maxRssKiB: rss ? Number(rss[1]) : NaN });
    });
  });

/** A tree of `count` small files (64–1,087 bytes), `perFolder` to a folder; returns the relative names. */
const writeTree = async (dir: string, count: number, perFolder: number): Promise<string[]> => {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const folder = perFolder >= count ? '' : `d${Math.floor(i / perFolder)}/`;
    names.push(`${folder}f${i}.bin`);
  }
  for (const folder of new Set(names.map((name) => name.slice(0, name.lastIndexOf('/') + 1)))) await mkdir(join(dir, folder), { recursive: true });
  for (let i = 0; i < names.length; i += 256) {
    await Promise.all(names.slice(i, i + 256).map((name, j) => writeFile(join(dir, name), randomBytes(64 + ((i + j) % 1024)))));
  }
  return names.sort();
};

const filesUnder = async (dir: string): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(relative(dir, path));
    }
  };
  await walk(dir);
  return out.sort();
};

/** Every file of `names` in `copy` equals the one in `source`, and `copy` holds nothing else. */
const expectSameTree = async (source: string, copy: string, names: string[]): Promise<void> => {
  expect(await filesUnder(copy)).toEqual(names);
  for (let i = 0; i < names.length; i += 256) {
    const same = await Promise.all(names.slice(i, i + 256).map(async (name) => (await readFile(join(source, name))).equals(await readFile(join(copy, name)))));
    const wrong = names.slice(i, i + 256).filter((_, j) => !same[j]);
    expect(wrong).toEqual([]);
  }
};

/** Peak RSS of a live process so far (KiB). */
const peakRssKiB = (pid: number): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

describe('large trees (issue 17): put -r, ls, get -r of thousands of files', () => {
  let work: string;
  let server: ChildProcessWithoutNullStreams;
  let port: string;

  beforeAll(async () => {
    ensureBuilt();
    work = await mkdtemp(join(tmpdir(), 'rxfer-large-trees-'));
    await mkdir(join(work, 'root'));
    const config = join(work, 'server.json');
    await writeFile(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, storage: { kind: 'local', root: join(work, 'root') }, limits: { maxListEntries: MAX_LIST_ENTRIES }, log: { level: 'info' } }));
    server = spawn(process.execPath, [BIN, 'serve', '--config', config], { env: { ...process.env } });
    let output = '';
    port = await new Promise<string>((resolve, reject) => {
      server.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const listening = /"port":(\d+)/.exec(output);
        if (listening) resolve(listening[1]!);
      });
      server.once('exit', () => reject(new Error(`serve exited early: ${output}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  const treeCase = async (count: number, perFolder: number) => {
    const source = join(work, `src-${count}-${perFolder}`);
    const names = await writeTree(source, count, perFolder);
    const remote = `t${count}-${perFolder}`;
    const put = await cli(['put', '-r', source, remote, '-p', port, '-q']);
    expect(put.stderr.replace(/\s*max-rss-kib \d+\s*/, '')).toBe('');
    expect(put.code).toBe(0);
    // The identical re-run sends nothing: every file is known to the server by size and digest.
    const again = await cli(['put', '-r', source, remote, '-p', port]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${count} already there, skipped`);
    const target = join(work, `copy-${count}-${perFolder}`);
    const get = await cli(['get', '-r', remote, target, '-p', port, '-q']);
    expect(get.code).toBe(0);
    await expectSameTree(source, join(target, remote), names);
    for (const run of [put, again, get]) expect(run.maxRssKiB).toBeLessThan(RSS_BOUND_KIB);
    expect(peakRssKiB(server.pid!)).toBeLessThan(RSS_BOUND_KIB);
    await rm(target, { recursive: true, force: true });
    return { put, again, get, names, remote };
  };

  test('2,000 files in folders of 500: complete both ways, re-run skips all, bounded RSS; ls -r --json lists them all', async () => {
    const { names, remote } = await treeCase(2000, PER_FOLDER);
    // Two pages and more: printed page by page as the server sends them, still one JSON array.
    const ls = await cli(['ls', '-r', remote, '--json', '-p', port]);
    expect(ls.code).toBe(0);
    const items = JSON.parse(ls.stdout) as { name: string; type: string }[];
    expect(items.filter((item) => item.type === 'file').map((item) => item.name).sort()).toEqual(names.map((name) => `${remote}/${name}`).sort());
    expect(items.filter((item) => item.type === 'folder').map((item) => item.name)).toEqual([0, 1, 2, 3].map((i) => `${remote}/d${i}`));
    expect(ls.maxRssKiB).toBeLessThan(RSS_BOUND_KIB);
  }, 180_000);

  // 10,000 rather than 20,000 keeps `npm test` under its 5 minutes (≈ 35 s here when the machine is
  // quiet); scripts/large-trees.js runs 20,000 and 200,000.
  test('10,000 files in folders of 500: the same, and the client holds neither the tree nor file data (RSS well under the bound)', async () => {
    const { put, get } = await treeCase(10_000, PER_FOLDER);
    // The client holds one page of the listing and one folder of the walk, not the tree (nor file data).
    expect(put.maxRssKiB).toBeLessThan(RSS_BOUND_KIB / 2);
    expect(get.maxRssKiB).toBeLessThan(RSS_BOUND_KIB / 2);
  }, 600_000);

  test(`a folder with more files than limits.maxListEntries (${MAX_LIST_ENTRIES}) is listed and downloaded whole`, async () => {
    const { names, remote } = await treeCase(1500, 10_000);
    const ls = await cli(['ls', remote, '-p', port]);
    expect(ls.code).toBe(0);
    const listed = ls.stdout.split('\n').filter((line) => line.includes(`${remote}/f`));
    expect(listed.length).toBe(names.length);
  }, 180_000);
});
