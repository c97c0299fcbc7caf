import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { digestLogPath, formatDigestLine } from '../../src/storage/small-commit-log';
import { sha256 } from '../security/support/wire';
import { type ServerProcess, startServerProcess } from '../helpers/server-process';

/**
 * Hostile test of the digest-log compaction against the real server process (`node bin/rxfer.js
 * serve`, built). The commit worker now replies to a batch and then compacts the folder's log, which
 * for a log of ≈ 15 MiB takes a second or more: a server killed then (SIGKILL, the OOM killer, a
 * power cut) leaves `<log>.<pid>-<threadId>.tmp` half-written in `.rxfer/sums/folders`. The name
 * holds the pid, so no later compaction reuses it, and nothing at start removes it (the start-up
 * sweep looks at staging files only): every such crash left up to 16 MiB more behind, for good.
 */
const GUARD_MS = 20_000;

/** Polls `check` until true (a failure guard, not a timing assertion). */
const until = async (check: () => Promise<boolean>): Promise<void> => {
  for (const deadline = Date.now() + GUARD_MS; !(await check()); ) {
    if (Date.now() > deadline) throw new Error('the compaction never wrote its temporary file');
  }
};

const skipUnlessBuilt = existsSync(join(__dirname, '..', '..', 'dist', 'cli', 'main.js')) ? describe : describe.skip;

skipUnlessBuilt('a server killed while it compacts a big digest log', () => {
  let base: string;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-h3-killed-'));
  });
  afterAll(async () => {
    server?.proc.kill('SIGKILL');
    await rm(base, { recursive: true, force: true });
  });

  test('leaves no compaction temp file behind once it has started again', async () => {
    const root = join(base, 'root');
    const sums = join(root, '.rxfer', 'sums', 'folders');
    await mkdir(join(root, 'big'), { recursive: true });
    await mkdir(sums, { recursive: true });
    // ≈ 15 MiB of records of files long gone: a compaction of a few seconds, under the 16 MiB cap.
    const lines: string[] = [];
    for (let i = 0; i < 110_000; i++) lines.push(formatDigestLine(`gone-${i}.bin`, 1024, 1_733_000_000_000 + i, 1_000_000 + i, 'sha256', 'cd'.repeat(32)));
    await writeFile(digestLogPath(sums, 'big'), lines.join(''));
    const configPath = join(base, 'config.json');
    await writeFile(configPath, JSON.stringify({ server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0 }, storage: { kind: 'local', root }, auth: { anonymous: 'write' }, log: { level: 'info' } }));

    server = await startServerProcess(configPath, GUARD_MS);
    let client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    const first = randomBytes(700);
    await client.uploadBuffer('big/first.bin', first);
    // Told OK: the worker is compacting now. Killed as a crash would, once it writes the new log.
    await until(async () => (await readdir(sums)).some((name) => name.endsWith('.tmp')));
    server.proc.kill('SIGKILL');
    await server.exited();
    client.close();
    const temps = (await readdir(sums)).filter((name) => name.endsWith('.tmp'));
    // The attack hit the compaction (it runs for seconds after the reply).
    expect(temps.length).toBeGreaterThan(0);

    // Started again (no clean stop): the file told OK is whole, and the leftover is gone.
    server = await startServerProcess(configPath, GUARD_MS);
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    expect((await client.downloadBuffer('big/first.bin')).data).toEqual(first);
    const second = randomBytes(300);
    await client.uploadBuffer('big/second.bin', second);
    const listed = await client.list('big');
    expect(listed.map((entry) => [entry.name, entry.digest])).toEqual([
      ['big/first.bin', sha256(first)],
      ['big/second.bin', sha256(second)],
    ]);
    client.close();
    // SIGTERM waits for the compaction this upload started, then exits.
    server.proc.kill('SIGTERM');
    await server.exited();
    server = undefined;
    expect((await readdir(sums)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    // The log was compacted to the two files at last.
    const text = await readFile(digestLogPath(sums, 'big'), 'utf8');
    expect(text).not.toContain('gone-');
  }, 60_000);
});
