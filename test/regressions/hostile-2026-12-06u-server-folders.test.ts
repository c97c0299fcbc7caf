import { randomBytes } from 'node:crypto';
import { type FSWatcher, realpathSync, watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stagingName } from '../../src/io/staging-name';
import { RawClient, batchRequest, destroyAll, downloadRequest, listRequest, parseListHeader, readListAnswer, sha256, uploadRequest } from '../helpers/raw-client';
import { type TestServer, eventually, startTestServer, userFiles } from '../helpers/server';
import { startSwapper } from './support/link-attack';

/**
 * Hostile pass of 2026-12-06 (u), against 4f1035d: the server's own folders under `<root>/.rxfer`
 * (`staging`, `partials`, `sums`) removed, or swapped for a symbolic link (to a folder outside the
 * root, to a file, to nothing), by someone with access to the storage. 4f1035d made such a failure
 * `ERR STORAGE_FAILED … the server's own folder .rxfer/<folder> cannot be used (…)`, never
 * NAME_INVALID about the client's name (openServerFolderSync, through the commit worker too).
 *
 * Found (the tests below fail on 8ee0b24; none is 4f1035d's doing, each is in the code around it):
 *   1. The small-commit worker creates its staging file through the staging folder it opened and
 *      checked (stage), but renames it into place BY PATH, `job.staging` (small-commit.worker.js
 *      publish, `fs.renameSync(job.staging, target)`; ADDFILE `fs.linkSync(job.staging, target)` and
 *      `fs.unlinkSync(job.staging)`; a failed file's clean-up in `fail` too). With `.rxfer/staging`
 *      swapped for a link between the two, the rename takes the file of that name in the folder the
 *      link leads to, outside the root, puts it under the user's name, and the client is told
 *      `OK file data recv 2048 <digest of the bytes it sent>`. Staging names are a fixed per-process
 *      prefix and a counter (io/staging-name.ts): a local user who has seen one can plant the next
 *      thousands. In a 4 s loop (one run; others alike): small UPLOAD 180 untrue of 408 OK, small
 *      ADDFILE 159 of 335, BATCH 132 of 238, and 469 files outside the root moved (or linked and then
 *      deleted) in; the streamed 200 KiB uploads (local-staged-write.ts publish, through
 *      inServerFolder) 0 untrue of 68.
 *   2. `.rxfer/sums` (or `.rxfer/sums/folders`) swapped for a link to a folder outside: a small upload
 *      makes `folders/<sha256 of its folder>.log` out there (the worker's appendDigests opens it with
 *      O_CREAT, then assertUnder finds the path wrong and the file stays), and a STAT of a small file
 *      (one the server committed before the swap, whose record it now looks for out there; one put
 *      there by other means; any, in BLAKE3) appends its JSON record to a log out there, made if
 *      missing (digest-index.ts remember: appendFile by path, O_NOFOLLOW on the last segment only; a
 *      small file's RENAME too, carryDigests).
 *   3. At start, with `.rxfer/sums` (or `.rxfer/sums/folders`) a link to a folder outside: every
 *      `*.tmp` file in it (and in its `folders/`) is deleted, `folders/` made there if missing
 *      (digest-index.ts init: mkdir -p, readdir and unlink by path), and the logs of bug 2 written
 *      there. With `.rxfer` itself a link to a folder outside: what is in its `staging/` is deleted
 *      (staging-area.ts prepareStagingArea: rm -r by path), `partials/` and `sums/folders/` are made
 *      there (partial-uploads.ts and digest-index.ts init), and at stop `clean-stop` is written there
 *      (markCleanStop: O_NOFOLLOW on the last segment only).
 *
 * Held: each of staging, partials, sums removed or swapped four ways, then UPLOAD and ADDFILE of
 * 4 KiB (the worker), 200 KiB (streamed) and 1.5 MiB (a kept upload), a BATCH, STAT (SHA-256 and
 * BLAKE3), LIST, DOWNLOAD, DELETE, RENAME, RESUME and a resumed upload: the exact STORAGE_FAILED line
 * naming the folder where it is needed, OK (and the file whole) where it is not, never NAME_INVALID,
 * never a server path; another client served meanwhile; the same requests stored on the same
 * connection once the folder is back (a kept upload still resumable). `.rxfer/staging` a link or a
 * file at start: repaired (the link or file replaced by a real folder, nothing outside touched).
 * `.rxfer/partials` or `.rxfer/sums` a file, a link to a file or to nothing at start: the start is
 * refused with the system's error and the path (to the operator, not to clients).
 * Fixed after this pass's report (it said "worth a word"): with `.rxfer/partials` unusable, RESUME
 * answered `NOT FOUND no interrupted upload of k.bin is kept`, a resumed upload `ERR RESUME_MISMATCH … no interrupted upload
 * of it is kept; upload it from the start`, DELETE of a name with only a kept upload `NOT FOUND`: the
 * kept upload is still there once the folder is back (asserted). RESUME and a resumed upload now
 * answer STORAGE_FAILED naming `.rxfer/partials` (partial-uploads.ts: probe, keptGone); so does DELETE
 * of such a name since the twenty-fifth session (discard looks through the checked folder; by path it
 * followed a folder swapped for a link).
 */

const KiB = 1024;
const MiB = 1024 * KiB;
/** Failure guard for every reply (not a timing assertion). */
const REPLY_MS = 20_000;

type Spoil = 'removed' | 'link-to-folder' | 'link-to-file' | 'dangling-link';
const SPOILS: Spoil[] = ['removed', 'link-to-folder', 'link-to-file', 'dangling-link'];

/** What 4f1035d answers an upload that needs `.rxfer/<folder>` when it is spoiled so. */
const storageFailed = (name: string, folder: string, spoil: Spoil): string =>
  `ERR STORAGE_FAILED cannot store ${name}: the server's own folder .rxfer/${folder} cannot be used (${
    spoil === 'removed' ? 'ENOENT (no such file or directory)' : 'it, or a folder above it, is a symbolic link now: ELOOP'
  }); nothing stored`;
const stored = (data: Buffer): string => `OK file data recv ${data.length} ${sha256(data)}`;
/** Lets fs.watch events reach the event loop before looking (not a timing assertion). */
const aTurn = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything under `folder` (relative paths; folders end in `/`), files with their content's digest: what must not change outside the root. */
const snapshot = async (folder: string): Promise<Record<string, string>> => {
  const entries: Record<string, string> = {};
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name).slice(folder.length + 1);
    entries[entry.isDirectory() ? `${path}/` : path] = entry.isDirectory() ? 'folder' : sha256(await readFile(join(folder, path)).catch(() => Buffer.from('unreadable')));
  }
  return entries;
};

/** An outside folder as a local user would point a link at: a `folders/` in it, a `*.tmp`, a file. */
const makeTrap = async (trap: string): Promise<void> => {
  await mkdir(join(trap, 'folders'), { recursive: true });
  await mkdir(join(trap, 'staging'), { recursive: true });
  await writeFile(join(trap, 'victim.tmp'), 'outside the root: not the server\'s');
  await writeFile(join(trap, 'folders', 'victim.tmp'), 'outside the root: not the server\'s');
  await writeFile(join(trap, 'staging', 'victim.bin'), 'outside the root: not the server\'s');
  await writeFile(join(trap, 'a-file'), 'outside the root: not the server\'s');
};

/** Spoils `path` (a folder of the server's) as asked, its real folder parked beside it; `trap` is outside the root. */
const spoilAt = async (path: string, spoil: Spoil, trap: string): Promise<() => Promise<void>> => {
  await rename(path, `${path}-parked`);
  if (spoil === 'link-to-folder') await symlink(trap, path);
  if (spoil === 'link-to-file') await symlink(join(trap, 'a-file'), path);
  if (spoil === 'dangling-link') await symlink(join(trap, 'nothing-here'), path);
  let undone = false;
  return async () => {
    if (undone) return;
    undone = true;
    await rm(path, { force: true, recursive: true });
    await rename(`${path}-parked`, path);
  };
};

const clients: RawClient[] = [];
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  destroyAll(clients);
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const connect = async (port: number): Promise<RawClient> => {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
};

const upload = async (client: RawClient, name: string, data: Buffer, verb: 'UPLOAD' | 'ADDFILE' = 'UPLOAD'): Promise<string> => {
  await client.send(uploadRequest(name, data, { verb }));
  return client.readUploadOutcome(REPLY_MS);
};
const ask = async (client: RawClient, request: string): Promise<string> => {
  await client.send(request);
  return client.readLine(REPLY_MS);
};
/** A DOWNLOAD's first line, and its bytes' digest if it sent any. */
const download = async (client: RawClient, name: string): Promise<string> => {
  await client.send(downloadRequest(name));
  const first = await client.readLine(REPLY_MS);
  const size = /^OK (\d+) /.exec(first);
  return size ? `${first} | bytes ${sha256(await client.readBytes(Number(size[1]), REPLY_MS))}` : first;
};
/** A LIST's answer as one label: its header and listing lines, or its refusal. */
const list = async (client: RawClient, folder: string): Promise<string> => {
  await client.send(listRequest(folder));
  const first = await client.readLine(REPLY_MS);
  return parseListHeader(first) ? `${first} | ${(await readListAnswer(client, { header: first, timeoutMs: REPLY_MS })).body.toString()}` : first;
};

// ---------------------------------------------------------------------------------------------

describe("hostile 2026-12-06u: each of the server's own folders removed or swapped, every request that touches it", () => {
  /**
   * A server with d/s.bin (4 KiB), d/m.bin (200 KiB), d/l.bin (1.5 MiB) uploaded, o/other.txt put there
   * by other means, and 1 MiB kept of an interrupted 1.5 MiB upload of k.bin; an outside folder `trap`
   * beside the root, watched (with its `folders/`); what each request did there is noted under its label.
   */
  const setUp = async () => {
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const root = realpathSync(server.root);
    const scratch = realpathSync(server.scratch);
    const trap = join(scratch, 'trap');
    await makeTrap(trap);
    const c = await connect(server.port);
    const files = { s: randomBytes(4 * KiB), m: randomBytes(200 * KiB), l: randomBytes(1536 * KiB) };
    expect(await upload(c, 'd/s.bin', files.s)).toBe(stored(files.s));
    expect(await upload(c, 'd/m.bin', files.m)).toBe(stored(files.m));
    expect(await upload(c, 'd/l.bin', files.l)).toBe(stored(files.l));
    await mkdir(join(root, 'o'));
    await writeFile(join(root, 'o', 'other.txt'), 'put there by other means');
    const kept = randomBytes(1536 * KiB);
    const interrupted = await connect(server.port);
    await interrupted.send(Buffer.concat([Buffer.from(`UPLOAD ${kept.length}\nk.bin\n`), kept.subarray(0, MiB)]));
    expect(await interrupted.readLine(REPLY_MS)).toBe('OK file recv');
    await eventually(async () => ((await lstat(join(root, '.rxfer', 'partials', sha256('k.bin'))).catch(() => undefined))?.size ?? 0) === MiB, REPLY_MS, '1 MiB kept');
    interrupted.destroy();
    const keptReply = `OK partial ${MiB} ${sha256(kept.subarray(0, MiB))}`;
    await eventually(async () => (await ask(c, 'RESUME\nk.bin\n')) === keptReply, REPLY_MS, 'the upload kept');

    const events: string[] = [];
    let current = 'setup';
    const watchers: FSWatcher[] = [trap, join(trap, 'folders'), join(trap, 'staging')].map((folder) =>
      watch(folder, (event, name) => events.push(`${current}: ${event} ${folder.slice(trap.length)}/${name}`)),
    );
    cleanups.push(() => watchers.forEach((watcher) => watcher.close()));
    const before = await snapshot(trap);
    const replies: string[] = [];
    /** Runs a request under `label`, keeps its reply for the checks common to all. */
    const step = async (label: string, request: () => Promise<string>): Promise<string> => {
      current = label;
      const reply = await request();
      replies.push(reply);
      await aTurn();
      return reply;
    };
    /** What changed outside the root: every event seen in the trap, and files changed there. */
    const outsideChanges = async (): Promise<string[]> => {
      await aTurn(100);
      const after = await snapshot(trap);
      const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((path) => before[path] !== after[path]).map((path) => `${path}: ${before[path] ? (after[path] ? 'changed' : 'gone') : 'made'}`);
      return [...events, ...changed];
    };
    /** Another client is greeted and served while the folder is spoiled. */
    const anotherServed = async (): Promise<void> => {
      const other = await connect(server.port);
      expect(await ask(other, 'STAT\nd/s.bin\n')).toMatch(new RegExp(`^OK stat file 4096 ${sha256(files.s)} \\d+$`));
      other.destroy();
    };
    /** No reply names a path of the server's, nor blames the client's name for the server's folder. */
    const repliesClean = (): void => {
      for (const reply of replies) {
        expect(reply).not.toContain(tmpdir());
        expect(reply).not.toMatch(/NAME_INVALID|resolves outside/);
        expect(reply).toMatch(/^(OK|NOT FOUND|ERR [A-Z_]+ \S)/);
      }
    };
    return { server, root, trap, c, files, kept, keptReply, step, outsideChanges, anotherServed, repliesClean };
  };

  /**
   * `.rxfer/staging` removed or swapped, then: 4 KiB UPLOAD and ADDFILE (the commit worker), 200 KiB
   * UPLOAD and ADDFILE (streamed), a BATCH of three small files. Each must be the exact STORAGE_FAILED
   * naming `.rxfer/staging`, nothing stored; a 1.5 MiB upload (which stages in `.rxfer/partials`),
   * STAT, LIST and DOWNLOAD go on; nothing made outside; another client served. The folder put back,
   * the same requests on the same connection are stored, whole.
   */
  test.each(SPOILS)('.rxfer/staging %s: small, mid-sized and batched uploads are STORAGE_FAILED naming it, the rest goes on, and all is stored once it is back', async (spoil) => {
    const { root, trap, c, files, step, outsideChanges, anotherServed, repliesClean } = await setUp();
    const restore = await spoilAt(join(root, '.rxfer', 'staging'), spoil, trap);
    cleanups.push(restore);
    const small = randomBytes(4 * KiB);
    const mid = randomBytes(200 * KiB);
    const large = randomBytes(1536 * KiB);
    const batch = [0, 1, 2].map((i) => ({ name: `d/batch-${i}.bin`, data: randomBytes(KiB + i) }));
    const attempts = async (): Promise<string[]> => [
      await step('small UPLOAD', () => upload(c, 'd/a.bin', small)),
      await step('small ADDFILE', () => upload(c, 'd/b.bin', small, 'ADDFILE')),
      await step('mid UPLOAD', () => upload(c, 'd/c.bin', mid)),
      await step('mid ADDFILE', () => upload(c, 'd/e.bin', mid, 'ADDFILE')),
      ...(await step('BATCH', async () => {
        await c.send(batchRequest(batch));
        return (await c.readLines(batch.length, REPLY_MS)).join('\n');
      })).split('\n'),
    ];
    const names = ['d/a.bin', 'd/b.bin', 'd/c.bin', 'd/e.bin', ...batch.map((file) => file.name)];
    expect(await attempts()).toEqual(names.map((name) => storageFailed(name, 'staging', spoil)));
    expect(await step('large UPLOAD', () => upload(c, 'd/large.bin', large))).toBe(stored(large));
    expect(await step('STAT', () => ask(c, 'STAT\nd/m.bin\n'))).toMatch(new RegExp(`^OK stat file ${files.m.length} ${sha256(files.m)} \\d+$`));
    expect(await step('DOWNLOAD', () => download(c, 'd/s.bin'))).toBe(`OK ${files.s.length} ${sha256(files.s)} | bytes ${sha256(files.s)}`);
    expect(await step('LIST', () => list(c, 'd'))).toMatch(/^OK list \d+ 4 \|/);
    await anotherServed();
    expect(await userFiles(root)).toEqual(['d/l.bin', 'd/large.bin', 'd/m.bin', 'd/s.bin', 'o/other.txt']);
    expect(await outsideChanges()).toEqual([]);
    repliesClean();

    await restore();
    const again = await attempts();
    expect(again).toEqual([stored(small), stored(small), stored(mid), stored(mid), ...batch.map((file) => stored(file.data))]);
    for (const [name, data] of [['d/a.bin', small], ['d/b.bin', small], ['d/c.bin', mid], ['d/e.bin', mid], ...batch.map((file) => [file.name, file.data] as const)] as const) {
      expect(sha256(await readFile(join(root, name)))).toBe(sha256(data));
    }
  });

  /**
   * `.rxfer/partials` removed or swapped, then: 1.5 MiB UPLOAD and ADDFILE (exact STORAGE_FAILED naming
   * it), small and mid-sized UPLOADs (stored), RESUME of k.bin, its resumed upload, DELETE of k.bin (a
   * name with only a kept upload): never OK for what is not there, never NAME_INVALID. Put back: the
   * kept upload is still there, RESUME finds it, the resumed upload is stored whole; the 1.5 MiB upload too.
   */
  test.each(SPOILS)('.rxfer/partials %s: large uploads are STORAGE_FAILED naming it, a kept upload survives and resumes once it is back', async (spoil) => {
    const { root, trap, c, kept, keptReply, step, outsideChanges, anotherServed, repliesClean } = await setUp();
    const restore = await spoilAt(join(root, '.rxfer', 'partials'), spoil, trap);
    cleanups.push(restore);
    const large = randomBytes(1536 * KiB);
    const small = randomBytes(4 * KiB);
    const mid = randomBytes(200 * KiB);
    expect(await step('large UPLOAD', () => upload(c, 'd/big.bin', large))).toBe(storageFailed('d/big.bin', 'partials', spoil));
    expect(await step('large ADDFILE', () => upload(c, 'd/big2.bin', large, 'ADDFILE'))).toBe(storageFailed('d/big2.bin', 'partials', spoil));
    expect(await step('small UPLOAD', () => upload(c, 'd/a.bin', small))).toBe(stored(small));
    expect(await step('mid UPLOAD', () => upload(c, 'd/c.bin', mid))).toBe(stored(mid));
    const resumeHeader = `UPLOAD ${kept.length} FROM ${MiB} ${sha256(kept.subarray(0, MiB))}\nk.bin\n`;
    const resumed = async (): Promise<string> => {
      await c.send(resumeHeader);
      const first = await c.readLine(REPLY_MS);
      // The rest and the trailer are owed whatever the header's answer (PROTOCOL.md).
      await c.send(Buffer.concat([kept.subarray(MiB), Buffer.from(`SHA256 ${sha256(kept)}\n`)]));
      return first === 'OK file recv' ? `${first} | ${await c.readLine(REPLY_MS)}` : first;
    };
    // The kept upload is not "not kept" (it is there once the folder is back): the folder is named.
    const partialsFailed = /^ERR STORAGE_FAILED .*the server's own folder \.rxfer\/partials cannot be used/;
    expect(await step('RESUME', () => ask(c, 'RESUME\nk.bin\n'))).toMatch(partialsFailed);
    expect(await step('resumed UPLOAD', resumed)).toMatch(partialsFailed);
    // Not NOT FOUND either: the server cannot tell whether an upload of it is kept (twenty-fifth session).
    const deleteFailed = storageFailed('k.bin', 'partials', spoil).replace('cannot store k.bin', 'cannot delete the kept upload of k.bin').replace('; nothing stored', '');
    expect(await step('DELETE of a name with a kept upload', () => ask(c, 'DELETE\nk.bin\n'))).toBe(deleteFailed);
    expect(await step('RENAME of it', () => ask(c, 'RENAME\nk.bin\nk2.bin\n'))).toBe('NOT FOUND k.bin does not exist');
    await anotherServed();
    expect(await userFiles(root)).toEqual(['d/a.bin', 'd/c.bin', 'd/l.bin', 'd/m.bin', 'd/s.bin', 'o/other.txt']);
    expect(await outsideChanges()).toEqual([]);
    repliesClean();

    await restore();
    expect(await ask(c, 'RESUME\nk.bin\n')).toBe(keptReply);
    expect(await resumed()).toBe(`OK file recv | ${stored(kept)}`);
    expect(sha256(await readFile(join(root, 'k.bin')))).toBe(sha256(kept));
    expect(await upload(c, 'd/big.bin', large)).toBe(stored(large));
    expect(await upload(c, 'd/big2.bin', large, 'ADDFILE')).toBe(stored(large));
  });

  /**
   * `.rxfer/sums` (digest records and, in `folders/`, the small files' digest logs) removed or swapped;
   * also `.rxfer/sums/folders` alone swapped for a link to a folder outside. Its records are a cache:
   * uploads of every size, STAT (SHA-256 and BLAKE3, of a file the server committed and of one put
   * there by other means), LIST, DOWNLOAD, DELETE and RENAME must all work, with true digests, and
   * nothing may be made or written outside the root.
   *
   * FAILS on 8ee0b24 for link-to-folder (both): the small upload makes `folders/<sha256>.log` in the
   * outside folder (small-commit.worker.js appendDigests: O_CREAT, then assertUnder, the file left), and
   * every small file's STAT appends its record to a log there, made if missing (digest-index.ts
   * remember: appendFile by path); the failure lists each request and what it did out there.
   */
  test.each([...SPOILS.map((spoil) => ['sums', spoil] as const), ['sums/folders', 'link-to-folder'] as const])(
    '.rxfer/%s %s: every request works with true digests, and nothing is made or written outside the root',
    async (folder, spoil) => {
      const { root, trap, c, files, step, outsideChanges, anotherServed, repliesClean } = await setUp();
      // `.rxfer/sums/folders` swapped for the trap's own `folders/`: the logs would land there.
      const restore = await spoilAt(join(root, '.rxfer', ...folder.split('/')), spoil, folder === 'sums' ? trap : join(trap, 'folders'));
      cleanups.push(restore);
      const small = randomBytes(4 * KiB);
      const mid = randomBytes(200 * KiB);
      const large = randomBytes(1536 * KiB);
      expect(await step('small UPLOAD', () => upload(c, 'e/a.bin', small))).toBe(stored(small));
      expect(await step('mid UPLOAD', () => upload(c, 'e/c.bin', mid))).toBe(stored(mid));
      expect(await step('large UPLOAD', () => upload(c, 'e/l.bin', large))).toBe(stored(large));
      expect(await step('STAT of a small file committed before', () => ask(c, 'STAT\nd/s.bin\n'))).toMatch(new RegExp(`^OK stat file 4096 ${sha256(files.s)} \\d+$`));
      expect(await step('STAT of a small file put there by other means', () => ask(c, 'STAT\no/other.txt\n'))).toMatch(new RegExp(`^OK stat file 24 ${sha256('put there by other means')} \\d+$`));
      expect(await step('HASH BLAKE3', () => ask(c, 'HASH BLAKE3\n'))).toBe('OK hash blake3');
      expect(await step('STAT in BLAKE3', () => ask(c, 'STAT\ne/a.bin\n'))).toMatch(/^OK stat file 4096 [0-9a-f]{64} \d+$/);
      expect(await step('HASH SHA256', () => ask(c, 'HASH SHA256\n'))).toBe('OK hash sha256');
      expect(await step('LIST', () => list(c, ''))).toMatch(/^OK list \d+ 7 \|/);
      expect(await step('DOWNLOAD large', () => download(c, 'd/l.bin'))).toBe(`OK ${files.l.length} ${sha256(files.l)} | bytes ${sha256(files.l)}`);
      expect(await step('DOWNLOAD mid', () => download(c, 'e/c.bin'))).toBe(`OK ${mid.length} ${sha256(mid)} | bytes ${sha256(mid)}`);
      expect(await step('DELETE', () => ask(c, 'DELETE\nd/m.bin\n'))).toBe('OK deleted');
      expect(await step('RENAME', () => ask(c, 'RENAME\ne/l.bin\ne/l2.bin\n'))).toBe('OK renamed');
      await anotherServed();
      expect(await userFiles(root)).toEqual(['d/l.bin', 'd/s.bin', 'e/a.bin', 'e/c.bin', 'e/l2.bin', 'o/other.txt']);
      repliesClean();
      expect(await outsideChanges()).toEqual([]);
      await restore();
      expect(await ask(c, 'STAT\ne/a.bin\n')).toMatch(new RegExp(`^OK stat file 4096 ${sha256(small)} \\d+$`));
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe('hostile 2026-12-06u: .rxfer/staging swapped back and forth while clients upload', () => {
  /**
   * A local user swaps `.rxfer/staging` for a link to a folder outside the root and back, as fast as
   * renames go, for 4 s, while six clients pipeline small UPLOADs and ADDFILEs (the commit worker),
   * BATCHes and 200 KiB UPLOADs (streamed). The outside folder holds files under the names the server
   * will give its next staging files (a per-process prefix and a counter, io/staging-name.ts; one look
   * at `.rxfer/staging` shows them). Every reply must be OK (and then the name holds exactly the bytes
   * sent) or an ERR naming a code, never NAME_INVALID; no file outside the root is moved, changed or
   * deleted, none made; no staging file is left under a real name.
   *
   * FAILS on 8ee0b24: small-commit.worker.js creates the staging file through the staging folder it
   * opened and checked (stage), then renames it BY PATH (publish: `fs.renameSync(job.staging, target)`;
   * ADDFILE: `fs.linkSync(job.staging, target)` + `fs.unlinkSync(job.staging)`; fail: `unlinkSync`). A
   * swap in between has the outside file of that name renamed (or linked) in under the user's name, and
   * the reply `OK file data recv 2048 <digest of the bytes sent>`; seen for about half of the OKs.
   */
  test('small, batched and mid-sized uploads while .rxfer/staging is swapped in a loop: every OK is true, nothing outside is touched', async () => {
    const server = await startTestServer();
    cleanups.push(() => server.close());
    const root = realpathSync(server.root);
    const trap = join(realpathSync(server.scratch), 'trap');
    await mkdir(trap);
    // The next staging names: this module is the server's own (one Jest module registry).
    const [, prefix, counter] = /^(.*)-([0-9a-z]+)$/.exec(stagingName())!;
    const planted = Array.from({ length: 4000 }, (_, i) => `${prefix}-${(parseInt(counter!, 36) + 1 + i).toString(36)}`);
    for (const name of planted) await writeFile(join(trap, name), 'outside the root: not the server\'s');
    const before = await readdir(trap);

    const swapper = startSwapper(join(root, '.rxfer', 'staging'), trap, 4000);
    cleanups.push(() => swapper.child.kill());
    const untrue: string[] = [];
    const replies: string[] = [];
    /** Per kind of request: how many OKs, and how many of them untrue. */
    const tally: Record<string, { ok: number; untrue: number }> = {};
    const check = async (kind: string, name: string, data: Buffer, reply: string): Promise<void> => {
      replies.push(reply);
      if (!reply.startsWith('OK')) return;
      const count = (tally[kind] ??= { ok: 0, untrue: 0 });
      count.ok++;
      const holds = await readFile(join(root, name)).catch(() => Buffer.from('nothing'));
      if (reply !== stored(data) || !holds.equals(data)) {
        count.untrue++;
        untrue.push(`${kind} ${name}: "${reply}", the name holds ${holds.length} bytes: ${holds.subarray(0, 40).toString('latin1')}`);
      }
    };
    let stop = false;
    const ended = swapper.done.finally(() => (stop = true));
    await Promise.all(
      Array.from({ length: 6 }, async (_, client) => {
        const c = await connect(server.port);
        for (let round = 0; !stop && round < 200; round++) {
          if (client === 5) {
            // A BATCH of eight small files.
            const files = Array.from({ length: 8 }, (_, i) => ({ name: `r/b${round}-${i}.bin`, data: randomBytes(2 * KiB) }));
            await c.send(batchRequest(files));
            const lines = await c.readLines(files.length, REPLY_MS);
            for (const [i, file] of files.entries()) await check('BATCH', file.name, file.data, lines[i]!);
            continue;
          }
          const mid = client === 4;
          const files = Array.from({ length: mid ? 2 : 8 }, (_, i) => ({ name: `r/c${client}-${round}-${i}.bin`, data: randomBytes(mid ? 200 * KiB : 2 * KiB) }));
          const verb = round % 2 === 0 ? 'UPLOAD' : 'ADDFILE';
          await c.send(Buffer.concat(files.map((file) => uploadRequest(file.name, file.data, { verb }))));
          for (const file of files) await check(`${mid ? 'mid' : 'small'} ${verb}`, file.name, file.data, await c.readUploadOutcome(REPLY_MS));
        }
      }),
    );
    await ended;
    const oks = replies.filter((reply) => reply.startsWith('OK')).length;
    // The loop must have met both states, or it proved nothing.
    expect(oks).toBeGreaterThan(0);
    expect(replies.length - oks).toBeGreaterThan(0);
    for (const reply of replies) {
      expect(reply).toMatch(/^(OK file data recv \d+ [0-9a-f]{64}|ERR [A-Z_]+ \S)/);
      expect(reply).not.toMatch(/NAME_INVALID|resolves outside/);
    }
    const after = await readdir(trap);
    const touched: string[] = [];
    for (const name of planted) if ((await readFile(join(trap, name), 'utf8').catch(() => 'gone')) !== 'outside the root: not the server\'s') touched.push(name);
    // Per kind of request, how many of its OKs were untrue (the whole-file check on each).
    const untrueByKind = (lies: (kind: string) => number) => Object.fromEntries(Object.entries(tally).map(([kind, { ok }]) => [kind, `${lies(kind)} untrue of ${ok} OK`]));
    expect({ untrueByKind: untrueByKind((kind) => tally[kind]!.untrue), untrue: untrue.slice(0, 3), touched: touched.slice(0, 3), touchedCount: touched.length, made: after.filter((name) => !before.includes(name)) }).toEqual({
      untrueByKind: untrueByKind(() => 0),
      untrue: [],
      touched: [],
      touchedCount: 0,
      made: [],
    });
    expect((await userFiles(root)).filter((path) => path.includes('.rxfer-part-'))).toEqual([]);
  }, 40_000);
});

// ---------------------------------------------------------------------------------------------

describe("hostile 2026-12-06u: the server started with one of its own folders spoiled", () => {
  /**
   * A root whose `.rxfer/<folder>` is, before the server starts, a link to a folder outside (holding a
   * `staging/` with a file, a `folders/`, `*.tmp` files and a kept upload's pair of files), a link to a
   * file, a link to nothing, or a file. The start must refuse (with an error that names the folder) or
   * repair; either way nothing outside the root may be made, changed or deleted, at start, while
   * serving, or at stop. If it starts, uploads of 4 KiB, 200 KiB and 1.5 MiB are stored or answered
   * STORAGE_FAILED naming the folder, and a kept upload outside is never offered.
   *
   * What it does (8ee0b24): `staging` any way: repaired (rm, then a real folder); `partials` a link to
   * a folder: starts, and 1.5 MiB uploads are STORAGE_FAILED naming it (clear); `partials` or `sums`
   * anything else: refused, `EEXIST: file already exists, mkdir '<root>/.rxfer/partials'`, `ENOENT …`,
   * `ENOTDIR …` (the path names the folder; clear enough for an operator).
   * FAILS: `sums` (or `sums/folders`) a link to a folder outside: its `*.tmp` files deleted, `folders/`
   * made there, a digest log written there (digest-index.ts init; small-commit.worker.js); `.rxfer`
   * itself a link: the outside `staging/` emptied (staging-area.ts prepareStagingArea, rm -r by path),
   * `partials/` and `sums/folders/` made there, `clean-stop` written there at stop.
   */
  const cases: [string, 'link-to-folder' | 'link-to-file' | 'dangling-link' | 'file'][] = [
    ...(['link-to-folder', 'link-to-file', 'dangling-link', 'file'] as const).flatMap((spoil) => [['staging', spoil], ['partials', spoil], ['sums', spoil]] as [string, typeof spoil][]),
    ['sums/folders', 'link-to-folder'],
    ['.', 'link-to-folder'],
  ];
  test.each(cases)('.rxfer/%s %s at start: refused or repaired, nothing outside the root touched', async (folder, spoil) => {
    const tmp = await mkdtemp(join(tmpdir(), 'rxfer-hostile-u-start-'));
    cleanups.push(() => rm(tmp, { recursive: true, force: true }));
    const root = join(tmp, 'root');
    const trap = join(tmp, 'trap');
    await makeTrap(trap);
    // A kept upload of x.bin outside: a start that reads the folder through the link must not offer it.
    await writeFile(join(trap, sha256('x.bin')), 'kept outside');
    await writeFile(join(trap, `${sha256('x.bin')}.json`), JSON.stringify({ name: 'x.bin', size: 100, startedAt: new Date().toISOString() }));
    for (const own of ['staging', 'partials', 'sums/folders']) await mkdir(join(root, '.rxfer', own), { recursive: true });
    const own = join(root, '.rxfer', folder);
    await rm(own, { recursive: true });
    if (spoil === 'link-to-folder') await symlink(folder === 'sums/folders' ? join(trap, 'folders') : trap, own);
    if (spoil === 'link-to-file') await symlink(join(trap, 'a-file'), own);
    if (spoil === 'dangling-link') await symlink(join(trap, 'nothing-here'), own);
    if (spoil === 'file') await writeFile(own, 'a file where a folder of the server\'s goes');
    const before = await snapshot(trap);

    let server: TestServer | undefined;
    let refused: unknown;
    try {
      server = await startTestServer({ config: { storage: { root } } });
    } catch (err) {
      refused = err;
    }
    if (server) {
      cleanups.push(() => server!.close());
      const c = await connect(server.port);
      for (const size of [4 * KiB, 200 * KiB, 1536 * KiB]) {
        const data = randomBytes(size);
        const reply = await upload(c, `u/${size}.bin`, data);
        if (reply.startsWith('OK')) {
          expect(reply).toBe(stored(data));
          expect(sha256(await readFile(join(root, 'u', `${size}.bin`)))).toBe(sha256(data));
        } else {
          expect(reply).toMatch(new RegExp(`^ERR STORAGE_FAILED cannot store u/${size}\\.bin: the server's own folder \\.rxfer/(${folder === '.' ? 'staging|partials' : folder.split('/')[0]}) cannot be used \\(.+\\); nothing stored$`));
        }
      }
      expect(await ask(c, 'STAT\nu/4096.bin\n')).toMatch(/^(OK stat file 4096 [0-9a-f]{64} \d+|NOT FOUND u\/4096\.bin does not exist)$/);
      expect(await ask(c, 'RESUME\nx.bin\n')).toBe('NOT FOUND no interrupted upload of x.bin is kept');
      await server.stop();
      if (folder === 'staging') expect((await lstat(own)).isDirectory()).toBe(true);
    } else {
      // Refused: the operator is told which folder (the path is the operator's, not a client's).
      expect(String(refused)).toContain(join('.rxfer', folder.split('/')[0]!));
    }
    expect(await snapshot(trap)).toEqual(before);
  });
});
