import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadTree, type TreeResult } from '../../src/client/download-tree';
import { RxferClient } from '../../src/client/rxfer-client';
import { RxferError } from '../../src/errors/rxfer-error';
import { listFiles, startTestServer, type TestServer } from '../helpers/server';
import { withTmpfs } from '../helpers/tmpfs';
import { cutProxy, downloadAnswer, partsOf, sha256, treeServer, type CutProxy, type FakeFile } from './support/grouped-download-proxy';

/**
 * Hostile pass of 2026-12-06 (o), against grouped downloads: `get -r` asks for its small files (≤ 64
 * KiB as listed) 16 to a request of the client (RxferClient.downloadFiles, aefe9ac), files of folders
 * the copy made itself skip the looks under their names (intoNewFolder), and fsyncs follow FsyncPace
 * (8713b54). Real sockets on 127.0.0.1: the real server where it can say it (behind a proxy that cuts
 * at a chosen byte), a fake one where a server must lie. No timing is asserted.
 *
 * FOUND (the tests that assert the correct behaviour fail on aefe9ac):
 *
 *   1. RxferClient.downloadFiles rejects as a whole when one item's name is refused by the client
 *      (NAME_INVALID), though it promises that each file settles on its own; nothing of the group is
 *      downloaded, and an item whose kept bytes were opened for a resume keeps its resume lock for the
 *      life of the process. Reproduction: `downloadFiles([{remoteName:'a',…}, {remoteName:'bad\nname',…},
 *      {remoteName:'c',…}])` → rejects `NAME_INVALID "bad\nname": control characters are not allowed`,
 *      no file written (`download('bad\nname')` rejects that one request alone). With
 *      `.big.rxfer-resume` (1 MiB of big) beside the first item's target: after the rejection
 *      `.big.rxfer-resume.lock` (our pid) stays, and the next `download('big', …)` in the process does
 *      not resume (no resumedAt; 2 MiB fetched again) and leaves `.big.rxfer-resume` and its lock behind.
 *      Cause: `requestFor` (wireName) runs inside `ready.map(...)` of downloadFiles, after every
 *      prepareDownload, outside any per-item catch; the prepared staging files are never given up.
 *      (get -r cannot reach it: a listed name passes the same check before it is asked for.)
 *
 *   2. get -r whose connection is lost in the last group of a listing page answers with the bare
 *      loss of the next page's LIST ("the server closed the connection", no detail): the file that
 *      failed is not named and the files that landed are not counted. On 8713b54 (one request per
 *      file) the same cut said "1 of 40 files were not downloaded: …/f039: the server closed the
 *      connection" (detail { failed: 1, files: 40 }), as downloadTree's own test "the server ending
 *      the connection at a download: the files not downloaded are told, not a bare loss" asks.
 *      Reproduction: a paged server, 100 files of 7 bytes in pages of 40; it ends the connection
 *      (FIN) when asked for d/f039 (or f038, f036 …: any file of the page's last group, f032–f039).
 *      Cause: a group's failures reach `failures` only once all its files have settled, commits
 *      (fsync, rename, folder fsync) of the files that landed included; the LIST AFTER queued behind
 *      the group reads (and fails) as soon as the group's replies are read, so downloadTree's catch
 *      sees `failures.length === 0` and rethrows the listing's error.
 *
 *   3. (not this change: the same on 8713b54, which fetched each file with `download`) A symbolic link
 *      swapped in for a folder that get -r made, after it was made and before its files are
 *      committed, is written through: the files land wherever the link points, outside the target.
 *      refuseLinkBelow looks once per folder; the staging file is then opened by path. Reproduction:
 *      get -r of t/{a,sub/x,sub/y} into a new folder; after `sub` is made, `mv sub sub.parked; ln -s
 *      /elsewhere sub` → exit with x and y in /elsewhere (the README's promise for get -r is that nothing
 *      lands outside the target; rsync's CVE-2024-12087/12088 were this shape).
 *
 *   4. (not this change: the same on 8713b54) After the client abandons the connection because the
 *      stream is out of step (a reply line outside the protocol, a resume it did not ask for), the
 *      downloads queued behind still read what was already buffered and commit it: the replies are
 *      one file late, so each later file gets its predecessor's bytes, "verified" against the digest
 *      announced for them, and is reported downloaded. Reproduction: a server that sends 5 bytes more
 *      than announced after the body of the 4th of 20 files → "2 of 20 files were not downloaded"
 *      (f004 PROTOCOL_VIOLATION "xxxxxOK 7 …", f005 "unexpected reply … "file 4"") and f006…f019 hold
 *      the bytes of f005…f018. Connection.readReply/readBody do not look at the reason `abandon` set;
 *      ReplyReader serves its buffer after the end (right for a server's FIN, wrong after our own abandon).
 *
 * All four fixed in the commit after aefe9ac: 1. prepareDownload checks the name first (wireName), so a
 * refused item fails alone before it takes anything; 2. downloadTree waits for the downloads in flight
 * before it decides a lost connection's error; 3. every file of a tree is renamed into the folder that
 * was checked, through its opened descriptor (renameIntoFolder, src/client/checked-rename.ts); 4. once
 * the client abandons a connection nothing more is read from it, buffered bytes included
 * (Connection.abandon).
 *
 * Held (the other tests): cuts at about a hundred points of the real server's stream (before any
 * reply, inside a reply line, inside the k-th body, after the last) into a new and an existing target — every file
 * is the new one or as it was, no staging file is left but a ≥ 1 MiB one's .rxfer-resume, onFile and
 * the error's counts are exactly the files that landed and those that did not; files listed small that
 * grew (100 KiB, 2 MiB), shrank, vanished or became folders between LIST and DOWNLOAD; local folders,
 * links (to a file, to a folder), FIFOs and junk kept bytes under the names, there before or planted
 * while the copy runs into folders it made; kept bytes of a file now small (not a prefix, a prefix, a
 * whole file and more), with and without resume; a full 1 MiB tmpfs; 2,000 files in pages of 700 with
 * 70 KiB files among them; servers that announce 1 TiB, or 5 MiB and cut after 100 bytes.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

interface TreeOutcome {
  readonly result?: TreeResult;
  readonly error?: RxferError;
  /** Names onFile was told of: the files the copy says it downloaded. */
  readonly reported: string[];
}

const getTree = async (client: RxferClient, remote: string, target: string, options: { resume?: boolean } = {}): Promise<TreeOutcome> => {
  const reported: string[] = [];
  try {
    const result = await downloadTree(client, remote, target, { ...options, onFile: (entry) => reported.push(entry.name) });
    return { result, reported };
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    return { error: err as RxferError, reported };
  }
};

/** Staging files left under `folder` (any `.rxfer-` name; `allowed` are let through). */
const leftovers = async (folder: string, allowed: readonly string[] = []): Promise<string[]> =>
  (await listFiles(folder)).filter((path) => path.includes('.rxfer-') && !allowed.includes(path));

/**
 * What is wrong with a get -r of `files` (remote `t/…`) into `target`: a file neither new nor as it was
 * (`before`: its old bytes, undefined for none), a file landed but not reported or reported but not
 * landed, counts in the result or error that are not the files that landed and those that did not.
 */
const untruths = (files: readonly { name: string; data: Buffer }[], target: string, outcome: TreeOutcome, before: (name: string) => Buffer | undefined, strip = 't/'): string[] => {
  const problems: string[] = [];
  let landed = 0;
  for (const { name, data } of files) {
    const path = join(target, name.slice(strip.length));
    const now = existsSync(path) ? readFileSync(path) : undefined;
    const old = before(name);
    const isNew = now !== undefined && now.equals(data);
    const isOld = old === undefined ? now === undefined : now !== undefined && now.equals(old);
    if (!isNew && !isOld) problems.push(`${name}: neither the new file nor as it was`);
    if (isNew) landed++;
    if (isNew !== outcome.reported.includes(name) && !(isNew && isOld)) problems.push(`${name}: landed ${isNew}, reported ${outcome.reported.includes(name)}`);
  }
  if (outcome.result) {
    if (outcome.result.files !== files.length || landed !== files.length) problems.push(`resolved ${JSON.stringify(outcome.result)} with ${landed} of ${files.length} landed`);
  } else {
    const detail = outcome.error!.detail as { failed?: number; files?: number } | undefined;
    if (detail?.files !== files.length || detail.failed !== files.length - outcome.reported.length || outcome.reported.length !== landed) {
      problems.push(`${outcome.error!.code} ${JSON.stringify(detail)} with ${landed} landed, ${outcome.reported.length} reported: ${outcome.error!.message.slice(0, 160)}`);
    }
  }
  return problems;
};

const reasonOf = (outcome: PromiseSettledResult<unknown> | undefined): RxferError => {
  expect(outcome?.status).toBe('rejected');
  return (outcome as PromiseRejectedResult).reason as RxferError;
};

describe('RxferClient.downloadFiles: an item the client itself refuses (FINDING 1)', () => {
  let server: TestServer;
  let client: RxferClient;
  beforeEach(async () => {
    server = await startTestServer();
    client = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterEach(async () => {
    client.close();
    await server.close();
  });

  test('a name refused here fails that item alone; the items around it are downloaded', async () => {
    await client.uploadBuffer('a', Buffer.from('aaa'));
    await client.uploadBuffer('c', Buffer.from('ccc'));
    const local = server.scratch;
    const outcomes = await client.downloadFiles([
      { remoteName: 'a', localPath: join(local, 'a') },
      { remoteName: 'bad\nname', localPath: join(local, 'b') },
      { remoteName: 'c', localPath: join(local, 'c') },
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(reasonOf(outcomes[1]).code).toBe('NAME_INVALID');
    expect(readdirSync(local).sort()).toEqual(['a', 'c']);
  });

  test('the kept bytes of another item are let go: no lock left, and the next download resumes from them', async () => {
    const big = randomBytes(2 * MiB);
    await client.uploadBuffer('big', big);
    const local = server.scratch;
    writeFileSync(join(local, '.big.rxfer-resume'), big.subarray(0, MiB));
    // A connection closed at once (a user's abort): big is not downloaded now, its kept bytes stay for later.
    const other = await RxferClient.connect({ host: server.host, port: server.port });
    other.close();
    await other
      .downloadFiles([
        { remoteName: 'big', localPath: join(local, 'big') },
        { remoteName: 'bad\nname', localPath: join(local, 'b') },
      ])
      .catch(() => undefined);
    expect(readdirSync(local).sort()).toEqual(['.big.rxfer-resume']);
    await expect(client.download('big', join(local, 'big'))).resolves.toMatchObject({ size: big.length, resumedAt: MiB });
    expect(readdirSync(local)).toEqual(['big']);
  });
});

describe('get -r over the real server, cut at each part of the stream', () => {
  let server: TestServer;
  let proxy: CutProxy;
  // Small ones in groups; 100 KiB (a staging file of its own) and 1.2 MiB (the resumable one) between them.
  const sizes = [0, 1, 100, 4 * KiB, 64 * KiB, 10, 20, 30, 100 * KiB, 40, 50, 60, 70, 80, 90, 1200 * KiB, 100, 110, 120, 130, 140, 150];
  const files = sizes.map((size, i) => ({ name: `t/f${String(i).padStart(2, '0')}`, data: randomBytes(size) }));
  const big = 'f15';
  let cuts: number[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    const up = await RxferClient.connect({ host: server.host, port: server.port });
    for (const { name, data } of files) await up.uploadBuffer(name, data);
    up.close();
    proxy = await cutProxy(server.port);
    // One copy uncut, to learn where each reply line and body lies in the server's stream.
    const client = await RxferClient.connect({ host: '127.0.0.1', port: proxy.port });
    const uncut = await getTree(client, 't', join(server.scratch, 'uncut'));
    client.close();
    expect(uncut.result).toMatchObject({ files: files.length });
    const stream = proxy.downstream[0]!;
    const parts = partsOf(stream);
    const listing = parts.findIndex((part) => part.text?.startsWith('OK list'));
    const replies = parts.slice(listing + 2);
    expect(replies.filter((part) => part.kind === 'line')).toHaveLength(files.length);
    // At each reply line's start and inside it, at each body's second byte, middle and last byte.
    const at = new Set<number>();
    for (const part of replies) {
      const points = part.kind === 'line' ? [part.start, part.start + 3] : [part.start + 1, Math.floor((part.start + part.end) / 2), part.end - 1];
      for (const point of points) if (point >= part.start && point < part.end) at.add(point);
    }
    at.add(stream.length);
    cuts = [...at].sort((a, b) => a - b);
  });
  afterAll(async () => {
    await proxy.close();
    await server.close();
  });

  test.each(['a new target (its folders made by the copy)', 'a target holding older copies'])(
    'into %s: every file new or as it was, nothing staged but a cut 1.2 MiB file`s kept bytes, every count true',
    async (kind) => {
      const existing = kind.startsWith('a target holding');
      const problems: string[] = [];
      let failedRuns = 0;
      // Every other cut point for each kind, so that both see every part of the stream in turn.
      for (const [i, cut] of cuts.entries()) {
        if (i % 2 !== (existing ? 1 : 0) && cut !== cuts.at(-1)) continue;
        const target = join(server.scratch, `cut-${existing ? 'old' : 'new'}-${cut}`);
        const before = (name: string) => (existing ? Buffer.from(`old ${name}`) : undefined);
        if (existing) {
          mkdirSync(target);
          for (const { name } of files) writeFileSync(join(target, name.slice(2)), before(name)!);
        }
        proxy.cutAt = cut;
        const client = await RxferClient.connect({ host: '127.0.0.1', port: proxy.port });
        const outcome = await getTree(client, 't', target);
        client.close();
        if (outcome.error) failedRuns++;
        for (const problem of untruths(files, target, outcome, before)) problems.push(`cut at ${cut}: ${problem}`);
        const bigLanded = existsSync(join(target, big)) && readFileSync(join(target, big)).equals(files[15]!.data);
        for (const left of await leftovers(target, bigLanded ? [] : [`.${big}.rxfer-resume`])) problems.push(`cut at ${cut}: left ${left}`);
        rmSync(target, { recursive: true, force: true });
      }
      proxy.cutAt = undefined;
      expect(problems).toEqual([]);
      // The cuts did cut: all but the one after the last body failed some files.
      expect(failedRuns).toBeGreaterThan(10);
    },
    30_000,
  );
});

describe('get -r: the connection lost in the last group before a page boundary (FINDING 2)', () => {
  const files: FakeFile[] = Array.from({ length: 100 }, (_, i) => ({ name: `d/f${String(i).padStart(3, '0')}`, data: Buffer.from(`file ${i}\n`) }));
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'rxfer-hostile-o-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const cutAtDownload = async (at: number) => {
    // Pages of 40: files 0–39 on the first, asked for in groups 0–15, 16–31 and 32–39.
    const server = await treeServer(
      files,
      (_name, socket, n) => {
        if (n !== at) return 'serve';
        socket.end();
        return 'handled';
      },
      40,
    );
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const target = join(base, `t${at}`);
      return { outcome: await getTree(client, 'd', target), target };
    } finally {
      client.close();
      await server.close();
    }
  };

  test('cut inside a group with another behind it: the files not downloaded are named and counted (held)', async () => {
    const { outcome, target } = await cutAtDownload(20);
    expect(outcome.error).toMatchObject({ code: 'CONNECTION_LOST', detail: { failed: 20, files: 40 } });
    expect(untruths(files.slice(0, 40), target, outcome, () => undefined, 'd/')).toEqual([]);
  });

  test.each([39, 38, 33])('cut at file %i, in the page`s last group: the files not downloaded are named and counted, not the bare loss of the next LIST', async (at) => {
    const { outcome, target } = await cutAtDownload(at);
    expect(readdirSync(target)).toHaveLength(at);
    expect(outcome.error).toMatchObject({ code: 'CONNECTION_LOST', detail: { failed: 40 - at, files: 40 } });
    expect(outcome.error!.message).toMatch(new RegExp(`^${40 - at} of 40 files were not downloaded: ${join(target, `f0${at}`)}: `));
  });
});

describe('get -r against the real server, the tree changing and the local side in the way', () => {
  let server: TestServer;
  let up: RxferClient;
  beforeEach(async () => {
    server = await startTestServer();
    up = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterEach(async () => {
    up.close();
    await server.close();
  });

  /** A client whose first listing, once read to its end, lets `meanwhile` change the server's files. */
  const clientChanging = async (meanwhile: () => Promise<void>): Promise<RxferClient> => {
    const client = await RxferClient.connect({ host: server.host, port: server.port });
    const listPages = client.listPages.bind(client);
    let listings = 0;
    client.listPages = async function* (...args: Parameters<typeof listPages>) {
      yield* listPages(...args);
      if (++listings === 1) await meanwhile();
    } as typeof client.listPages;
    return client;
  };

  test.each(['a new target', 'a target holding older copies'])(
    'files listed small that grew, shrank, vanished or became folders before their DOWNLOAD, into %s: each lands or fails alone, truthfully',
    async (kind) => {
      const names = ['a', 'folder', 'gone', 'grow', 'grow2', 'shrink', 'z'];
      for (const name of names) await up.uploadBuffer(`t/${name}`, name === 'shrink' ? randomBytes(100 * KiB) : Buffer.from(`v1 ${name}`));
      const now = new Map(names.map((name) => [name, Buffer.from(`v1 ${name}`)]));
      const client = await clientChanging(async () => {
        await up.remove('t/gone');
        await up.remove('t/folder');
        await up.uploadBuffer('t/folder/x', Buffer.from('x'));
        const grown = randomBytes(2 * MiB);
        writeFileSync(join(server.scratch, 'grown'), grown);
        await up.upload(join(server.scratch, 'grown'), 't/grow');
        now.set('grow', grown);
        now.set('grow2', randomBytes(100 * KiB));
        await up.uploadBuffer('t/grow2', now.get('grow2')!);
        now.set('shrink', Buffer.from('small now'));
        await up.uploadBuffer('t/shrink', now.get('shrink')!);
      });
      const target = join(server.scratch, 'target');
      const existing = kind !== 'a new target';
      if (existing) {
        mkdirSync(target);
        for (const name of names) writeFileSync(join(target, name), `old ${name}`);
      }
      const outcome = await getTree(client, 't', target);
      client.close();
      expect(outcome.error).toMatchObject({ detail: { failed: 2, files: 7 } });
      expect(outcome.error!.message).toContain(`${join(target, 'folder')}: t/folder is a folder, not a file`);
      expect(outcome.error!.message).toContain(`${join(target, 'gone')}: NOT_FOUND`);
      for (const name of ['a', 'grow', 'grow2', 'shrink', 'z']) expect(readFileSync(join(target, name)).equals(now.get(name)!)).toBe(true);
      for (const name of ['folder', 'gone']) expect(existsSync(join(target, name)) && readFileSync(join(target, name), 'utf8')).toBe(existing && `old ${name}`);
      expect(outcome.reported.sort()).toEqual(['t/a', 't/grow', 't/grow2', 't/shrink', 't/z']);
      expect(await leftovers(target)).toEqual([]);
    },
  );

  test('into an existing target with a folder, links, a FIFO and junk kept bytes under the names: none written through, each told', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) await up.uploadBuffer(`t/${name}`, Buffer.from(`new ${name}`));
    const outside = join(server.scratch, 'outside');
    mkdirSync(join(outside, 'dir'), { recursive: true });
    writeFileSync(join(outside, 'victim'), 'victim');
    const target = join(server.scratch, 'target');
    mkdirSync(join(target, 'b'), { recursive: true });
    writeFileSync(join(target, 'b', 'keep'), 'keep');
    symlinkSync(join(outside, 'victim'), join(target, 'c'));
    symlinkSync(join(outside, 'dir'), join(target, 'd'));
    execFileSync('mkfifo', [join(target, 'e')]);
    mkdirSync(join(target, '.f.rxfer-resume'));
    const client = await RxferClient.connect({ host: server.host, port: server.port });
    const outcome = await getTree(client, 't', target);
    client.close();
    // b is a folder and d a link to one: refused before they are asked for; the link c is replaced, not followed.
    expect(outcome.error).toMatchObject({ code: 'LOCAL_IO', detail: { failed: 2, files: 6 } });
    expect(outcome.error!.message).toContain(`cannot write ${join(target, 'b')}: it is a directory`);
    expect(outcome.error!.message).toContain(`cannot write ${join(target, 'd')}: it is a directory`);
    expect(outcome.reported.sort()).toEqual(['t/a', 't/c', 't/e', 't/f']);
    for (const name of ['a', 'c', 'e', 'f']) expect(readFileSync(join(target, name), 'utf8')).toBe(`new ${name}`);
    expect(lstatSync(join(target, 'd')).isSymbolicLink()).toBe(true);
    expect(readdirSync(join(target, 'b'))).toEqual(['keep']);
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('victim');
    expect(readdirSync(join(outside, 'dir'))).toEqual([]);
    expect(lstatSync(join(target, '.f.rxfer-resume')).isDirectory()).toBe(true);
    expect(await leftovers(target)).toEqual([]);
  });

  test('into a new target while another program plants a folder, links, a FIFO and junk kept bytes under the names: none written through, each told', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) await up.uploadBuffer(`t/${name}`, Buffer.from(`new ${name}`));
    const outside = join(server.scratch, 'outside');
    mkdirSync(join(outside, 'dir'), { recursive: true });
    writeFileSync(join(outside, 'victim'), 'victim');
    const target = join(server.scratch, 'target');
    const client = await RxferClient.connect({ host: server.host, port: server.port });
    const downloadFiles = client.downloadFiles.bind(client);
    const intoNew: boolean[] = [];
    client.downloadFiles = (items, options) => {
      for (const item of items) intoNew.push(item.intoNewFolder === true);
      // Planted after the copy made the folder and chose to skip the looks, before the files are asked for.
      mkdirSync(join(target, 'b'));
      writeFileSync(join(target, 'b', 'keep'), 'keep');
      symlinkSync(join(outside, 'victim'), join(target, 'c'));
      symlinkSync(join(outside, 'dir'), join(target, 'd'));
      execFileSync('mkfifo', [join(target, 'e')]);
      writeFileSync(join(target, '.f.rxfer-resume'), 'junk');
      return downloadFiles(items, options);
    };
    const outcome = await getTree(client, 't', target);
    client.close();
    expect(intoNew).toEqual(names.map(() => true));
    expect(outcome.error).toMatchObject({ code: 'LOCAL_IO', detail: { failed: 1, files: 6 } });
    expect(outcome.error!.message).toContain(`${join(target, 'b')}: it is a folder (EISDIR)`);
    expect(readdirSync(join(target, 'b'))).toEqual(['keep']);
    expect(outcome.reported.sort()).toEqual(['t/a', 't/c', 't/d', 't/e', 't/f']);
    // Links and the FIFO are replaced by the files, as a rename does; nothing reached through them.
    for (const name of ['a', 'c', 'd', 'e', 'f']) {
      expect(lstatSync(join(target, name)).isFile()).toBe(true);
      expect(readFileSync(join(target, name), 'utf8')).toBe(`new ${name}`);
    }
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('victim');
    expect(readdirSync(join(outside, 'dir'))).toEqual([]);
    // Not this copy's: left as it was.
    expect(readFileSync(join(target, '.f.rxfer-resume'), 'utf8')).toBe('junk');
    expect(await leftovers(target, ['.f.rxfer-resume'])).toEqual([]);
  });

  test('a link swapped in for a folder the copy made is not written through (FINDING 3, not this change)', async () => {
    for (const name of ['a', 'sub/x', 'sub/y']) await up.uploadBuffer(`t/${name}`, Buffer.from(`new ${name}`));
    const elsewhere = join(server.scratch, 'elsewhere');
    mkdirSync(elsewhere);
    const target = join(server.scratch, 'target');
    const client = await RxferClient.connect({ host: server.host, port: server.port });
    const downloadFiles = client.downloadFiles.bind(client);
    client.downloadFiles = (items, options) => {
      // Another local user, after get -r made sub and looked at it: mv sub sub.parked; ln -s elsewhere sub.
      renameSync(join(target, 'sub'), join(target, 'sub.parked'));
      symlinkSync(elsewhere, join(target, 'sub'));
      return downloadFiles(items, options);
    };
    await getTree(client, 't', target);
    client.close();
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  test('kept bytes of files now small (not a prefix, a prefix, the whole file and more): each lands whole, nothing kept', async () => {
    const f = randomBytes(4 * KiB);
    const g = randomBytes(4 * KiB);
    const h = randomBytes(4 * KiB);
    for (const [name, data] of [['t/f', f], ['t/g', g], ['t/h', h]] as const) await up.uploadBuffer(name, data);
    for (const resume of [undefined, false]) {
      const target = join(server.scratch, `target-${resume}`);
      mkdirSync(target);
      writeFileSync(join(target, '.f.rxfer-resume'), randomBytes(1536 * KiB));
      writeFileSync(join(target, '.g.rxfer-resume'), g.subarray(0, 100));
      writeFileSync(join(target, '.h.rxfer-resume'), Buffer.concat([h, randomBytes(10)]));
      writeFileSync(join(target, 'h'), 'old h');
      const client = await RxferClient.connect({ host: server.host, port: server.port });
      const results: unknown[] = [];
      const reported: string[] = [];
      const result = await downloadTree(client, 't', target, { resume, onFile: (entry, r) => void (reported.push(entry.name), results.push(r)) });
      client.close();
      expect(result).toEqual({ files: 3, bytes: 3 * 4 * KiB, skipped: 0 });
      expect(readdirSync(target).sort()).toEqual(['f', 'g', 'h']);
      for (const [name, data] of [['f', f], ['g', g], ['h', h]] as const) expect(readFileSync(join(target, name)).equals(data)).toBe(true);
      // g's kept prefix was proven and used, unless resume is off.
      expect(results[reported.indexOf('t/g')]).toEqual(resume === false ? { size: g.length, digest: sha256(g) } : { size: g.length, digest: sha256(g), resumedAt: 100 });
    }
  });

  test('2,000 files in pages of 700, with 70 KiB ones among the small: all land, byte for byte, nothing staged', async () => {
    await server.close();
    server = await startTestServer({ config: { limits: { maxListEntries: 700 } } });
    up.close();
    up = await RxferClient.connect({ host: server.host, port: server.port });
    const files = Array.from({ length: 2000 }, (_, i) => ({
      name: `t/d${i % 7}/f${String(i).padStart(4, '0')}`,
      data: i % 400 === 3 ? randomBytes(70 * KiB) : Buffer.from(`file ${i} `.repeat(i % 50)),
    }));
    await Promise.all(files.map(({ name, data }) => up.uploadBatched(name, data)));
    const client = await RxferClient.connect({ host: server.host, port: server.port });
    const target = join(server.scratch, 'many');
    const outcome = await getTree(client, 't', target);
    client.close();
    expect(outcome.result).toEqual({ files: 2000, bytes: files.reduce((sum, { data }) => sum + data.length, 0), skipped: 0 });
    expect(untruths(files, target, outcome, () => undefined)).toEqual([]);
    expect(await leftovers(target)).toEqual([]);
  }, 30_000);
});

describe('get -r into a full disk (a 1 MiB tmpfs)', () => {
  test('files that do not fit fail with LOCAL_IO and leave nothing; the others are whole; the counts are true', async () => {
    const disk = await withTmpfs(MiB);
    if (!disk.canMount) {
      console.warn(`skipped: ${disk.reason}`);
      return;
    }
    const server = await startTestServer();
    try {
      const up = await RxferClient.connect({ host: server.host, port: server.port });
      const files = Array.from({ length: 40 }, (_, i) => ({ name: `t/f${String(i).padStart(2, '0')}`, data: randomBytes(i % 10 === 5 ? 100 * KiB : 40 * KiB) }));
      for (const { name, data } of files) await up.uploadBuffer(name, data);
      up.close();
      for (const existing of [false, true]) {
        const target = join(disk.dir, existing ? 'old' : 'new');
        if (existing) {
          mkdirSync(target);
          for (const { name } of files) writeFileSync(join(target, name.slice(2)), 'o');
        }
        const client = await RxferClient.connect({ host: server.host, port: server.port });
        const outcome = await getTree(client, 't', target);
        client.close();
        expect(outcome.error?.code).toBe('LOCAL_IO');
        expect(untruths(files, target, outcome, () => (existing ? Buffer.from('o') : undefined))).toEqual([]);
        expect(await leftovers(target)).toEqual([]);
        rmSync(target, { recursive: true, force: true });
      }
    } finally {
      await server.close();
      await disk.cleanup();
    }
  });
});

describe('get -r against servers that lie', () => {
  const files: FakeFile[] = Array.from({ length: 20 }, (_, i) => ({ name: `d/f${String(i).padStart(3, '0')}`, data: Buffer.from(`file ${i}\n`) }));
  let base: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'rxfer-hostile-o-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  /** get -r of d/ from a fake server that answers the 4th DOWNLOAD (d/f003) with `answer`. */
  const lyingAt3 = async (answer: (data: Buffer, socket: import('node:net').Socket) => void) => {
    const server = await treeServer(files, (_name, socket, n, file) => {
      if (n !== 3) return 'serve';
      answer(file!.data, socket);
      return 'handled';
    });
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const target = join(base, 't');
      return { outcome: await getTree(client, 'd', target), target };
    } finally {
      client.close();
      await server.close();
    }
  };

  test('a size of 1 TiB announced for a file listed at 7 bytes: that file fails with LOCAL_IO before any byte, the others are told', async () => {
    const { outcome, target } = await lyingAt3((data, socket) => socket.write(`OK ${2 ** 40} ${sha256(data)}\n`));
    expect(outcome.error).toMatchObject({ code: 'LOCAL_IO', detail: { files: 20 } });
    expect(outcome.error!.message).toContain(`${join(target, 'f003')}: not enough space`);
    expect(untruths(files, target, outcome, () => undefined, 'd/')).toEqual([]);
    expect(await leftovers(target)).toEqual([]);
  });

  test('5 MiB announced for a file listed at 7 bytes, cut after 100 bytes: its kept bytes are the only thing left, the rest told', async () => {
    const { outcome, target } = await lyingAt3((data, socket) => {
      socket.write(`OK ${5 * MiB} ${sha256(data)}\n`);
      socket.end(randomBytes(100));
    });
    expect(outcome.error).toMatchObject({ code: 'CONNECTION_LOST', detail: { failed: 17, files: 20 } });
    expect(untruths(files, target, outcome, () => undefined, 'd/')).toEqual([]);
    expect(await leftovers(target)).toEqual(['.f003.rxfer-resume']);
  });

  test.each([
    ['5 bytes more than announced after a body', (data: Buffer, socket: import('node:net').Socket) => socket.write(Buffer.concat([downloadAnswer(data), Buffer.from('xxxxx')]))],
    ['a resume that was not asked for', (data: Buffer, socket: import('node:net').Socket) => socket.write(`OK ${data.length} ${sha256(data)} from 3\n${data.subarray(3).toString()}`)],
  ])('%s: once the stream is out of step no file after it is written with another`s bytes (FINDING 4, not this change)', async (_what, answer) => {
    const { outcome, target } = await lyingAt3(answer);
    expect(outcome.error?.code).toBe('PROTOCOL_VIOLATION');
    const landed = (await listFiles(target)).map((path) => `d/${path}`);
    const wrong = landed.filter((name) => !files.find((file) => file.name === name)!.data.equals(readFileSync(join(target, name.slice(2)))));
    expect(wrong).toEqual([]);
    expect(untruths(files, target, outcome, () => undefined, 'd/')).toEqual([]);
  });
});
