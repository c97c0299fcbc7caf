import { mkdir, readFile, readdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { batchRequest } from '../helpers/raw-client';
import { diffSnapshots, snapshot } from '../security/support/server';
import { type Probe, ask, download, line, linkAttackHarness, listing, startSwapper, upload, withoutName } from './support/link-attack';

/**
 * Hostile pass of 2026-12-06 (r), against the change that marks an ELOOP of a folder on a name's way
 * (fd-paths.js linkOnTheWayError) so that storageError tells it as the folder check does ("resolves
 * outside the storage root"), whichever check met the link. A local user swaps a folder `k` for a link
 * (to an outside folder, file, nothing, a loop, a folder inside the root) either before the request
 * ("fresh": the realpath check meets it) or after a STAT made the server remember its check for a second
 * ("remembered": the open of the folder meets it), and compares the replies.
 *
 * FOUND (each failed on the code of that change; all fixed since, and the tests below hold them):
 *   A. RENAME src k/x, k swapped after a remembered check: `ERR NAME_INVALID src resolves outside the
 *      storage root`; it names the SOURCE, a plain file in the root (fresh: `ERR NAME_INVALID k/x resolves
 *      outside the storage root`). Before the change: `ERR NAME_INVALID src is a symbolic link; rxfer does
 *      not follow links`. local-file-ops.ts renameLocked maps every failure with storageError(err, 'rename', from).
 *      Same cause: RENAME src onto an existing file says `ERR EXISTS src already exists`.
 *   B. STAT / DELETE / RENAME of k/first, k swapped after a remembered check: `NOT FOUND k/first does not
 *      exist`; fresh: `ERR NAME_INVALID k/first resolves outside the storage root`. Timing alone picks the
 *      wording, which this change meant to end (LocalFileOps.entry swallows the marked ELOOP: `.catch(() => undefined)`).
 *   C. k swapped for a link to a folder INSIDE the root after a remembered check: UPLOAD (small, 100 KiB,
 *      > 1 MiB), ADDFILE, BATCH and MKDIR answer `… k/x resolves outside the storage root`, which is false
 *      (fresh, the same requests succeed in the linked folder; DOWNLOAD and LIST succeed either way).
 *      Before the change they said `k/x is a symbolic link; rxfer does not follow links` (false as well).
 * FIXED: a marked ELOOP (isLinkOnTheWay) makes the folder be checked again, once, where a cached check
 *   was used (RootPaths.inFolderFor at commit and MKDIR, LocalFileOps.entry, beginWrite's look), so the
 *   answer is the one a fresh check gives (B, C); RENAME tells a folder on the way under the name whose
 *   folder it is, and EXISTS under the target (A).
 *
 * Held: for a link to anything outside, every other verb answers the same fresh and remembered, the same
 * whatever is out there; no reply says "is a symbolic link" for a name whose last segment is not one; a
 * name whose last segment is a link is still told "is a symbolic link" (DOWNLOAD, STAT, DELETE, RENAME);
 * under a swapper process nothing outside changes and another client is still served.
 */

const MiB = 1024 * 1024;
const REQUESTS: Record<string, (k: string) => Probe> = {
  uploadSmall: (k) => upload(`${k}/x`, 'probe'),
  uploadMedium: (k) => upload(`${k}/x`, Buffer.alloc(100 * 1024, 1)),
  uploadLarge: (k) => upload(`${k}/x`, Buffer.alloc(MiB + 5, 1)),
  addfile: (k) => upload(`${k}/x`, 'probe', 'ADDFILE'),
  batch: (k) => line(batchRequest([{ name: `${k}/x`, data: 'probe' }]).toString('latin1')),
  resume: (k) => line(`RESUME\n${k}/x\n`),
  download: (k) => download(`DOWNLOAD\n${k}/first\n`),
  stat: (k) => line(`STAT\n${k}/first\n`),
  statMissing: (k) => line(`STAT\n${k}/x\n`),
  delete: (k) => line(`DELETE\n${k}/first\n`),
  renameFrom: (k) => line(`RENAME\n${k}/first\nelsewhere\n`),
  renameTo: (k) => line(`RENAME\nsrc\n${k}/x\n`),
  mkdir: (k) => line(`MKDIR\n${k}/m\n`),
  list: (k) => listing(`LIST\n${k}\n`),
};

describe('hostile 2026-12-06 (r): one wording for a folder on the way swapped for a link', () => {
  const { serve, connect } = linkAttackHarness();

  /** A server; outside: with-x/ (holding first), a loop; inside: inside/ (holding first), src. */
  const setUp = async () => {
    const server = await serve();
    await mkdir(join(server.sentinel, 'with-x'));
    await writeFile(join(server.sentinel, 'with-x', 'first'), 'outside first');
    await symlink(join(server.sentinel, 'loop'), join(server.sentinel, 'loop'));
    await mkdir(join(server.realRoot, 'inside'));
    await writeFile(join(server.realRoot, 'inside', 'first'), 'inside first');
    await writeFile(join(server.realRoot, 'src'), 'src');
    const client = await connect(server.port);
    const outside = { folder: join(server.sentinel, 'with-x'), file: join(server.sentinel, 'secret.txt'), nothing: join(server.sentinel, 'nothing'), loop: join(server.sentinel, 'loop') };
    let n = 0;
    /** `request` on a fresh folder k<n> (holding first) swapped for a link to `target` fresh or after a remembered check; the reply with k<n> as <name>. */
    const probe = async (request: (k: string) => Probe, target: string, when: 'fresh' | 'remembered'): Promise<string> => {
      const k = `k${n++}`;
      const dir = join(server.realRoot, k);
      await mkdir(dir);
      await writeFile(join(dir, 'first'), 'first');
      if (when === 'remembered') {
        await client.send(`STAT\n${k}/first\n`);
        expect(await client.readLine()).toMatch(/^OK stat file /);
      }
      await rename(dir, `${dir}.parked`);
      await symlink(target, dir);
      const reply = withoutName(await ask(client, request(k)), k);
      await unlink(dir);
      await rename(`${dir}.parked`, dir);
      await writeFile(join(server.realRoot, 'src'), 'src');
      return reply;
    };
    return { server, client, outside, probe };
  };

  test('FOUND A: RENAME onto a name below a folder swapped after a remembered check names the target, as the fresh check does, never the source', async () => {
    const { server, outside, probe } = await setUp();
    const before = await snapshot(server.sentinel);
    const replies: Record<string, string> = {};
    for (const [kind, target] of Object.entries(outside)) for (const when of ['fresh', 'remembered'] as const) replies[`${kind} ${when}`] = await probe(REQUESTS.renameTo!, target, when);
    // Now, remembered: "ERR NAME_INVALID src resolves outside the storage root" (before the change: "src is a symbolic link; …").
    for (const [what, reply] of Object.entries(replies)) expect({ what, reply }).toEqual({ what, reply: 'ERR NAME_INVALID <name>/x resolves outside the storage root' });
    expect(await readFile(join(server.realRoot, 'src'), 'utf8')).toBe('src');
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test('FOUND A (same cause): RENAME onto an existing file names the target in its EXISTS', async () => {
    const { server, client } = await setUp();
    await writeFile(join(server.realRoot, 'taken'), 'taken');
    // Now: "ERR EXISTS src already exists".
    expect(await ask(client, line('RENAME\nsrc\ntaken\n'))).toBe('ERR EXISTS taken already exists');
    expect(await readFile(join(server.realRoot, 'src'), 'utf8')).toBe('src');
  });

  test('FOUND B: STAT, DELETE and RENAME below a folder swapped after a remembered check answer as the fresh check does, not NOT FOUND', async () => {
    const { server, outside, probe } = await setUp();
    const before = await snapshot(server.sentinel);
    for (const verb of ['stat', 'statMissing', 'delete', 'renameFrom'] as const) {
      for (const [kind, target] of Object.entries(outside)) {
        const fresh = await probe(REQUESTS[verb]!, target, 'fresh');
        const remembered = await probe(REQUESTS[verb]!, target, 'remembered');
        expect(fresh).toMatch(/^ERR NAME_INVALID <name>\/\S+ resolves outside the storage root$/);
        // Now: "NOT FOUND <name>/first does not exist".
        expect({ verb, kind, remembered }).toEqual({ verb, kind, remembered: fresh });
      }
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test('FOUND C: a folder swapped for a link to a folder INSIDE the root after a remembered check is never said to resolve outside the root', async () => {
    const { server, probe } = await setUp();
    const inside = join(server.realRoot, 'inside');
    const said: Record<string, string> = {};
    for (const verb of ['uploadSmall', 'uploadMedium', 'uploadLarge', 'addfile', 'batch', 'mkdir', 'download', 'list'] as const) {
      said[verb] = await probe(REQUESTS[verb]!, inside, 'remembered');
    }
    // Now: every upload, ADDFILE, BATCH and MKDIR "… <name>/x resolves outside the storage root" (before the change "… is a symbolic link; …").
    for (const [verb, reply] of Object.entries(said)) expect({ verb, reply }).toEqual({ verb, reply: expect.not.stringMatching(/resolves outside the storage root/) });
    // Whatever was answered OK is in the linked folder inside.
    expect((await readdir(inside)).sort()).toEqual(expect.arrayContaining(['first']));
  });

  test('held: every other request answers the same fresh and remembered, whatever the link leads to outside, and never "is a symbolic link"', async () => {
    const { server, outside, probe } = await setUp();
    const before = await snapshot(server.sentinel);
    const insideBefore = await snapshot(join(server.realRoot, 'inside'));
    for (const verb of ['uploadSmall', 'uploadMedium', 'uploadLarge', 'addfile', 'batch', 'resume', 'download', 'mkdir', 'list'] as const) {
      const replies: Record<string, string> = {};
      for (const [kind, target] of Object.entries(outside)) for (const when of ['fresh', 'remembered'] as const) replies[`${kind} ${when}`] = (await probe(REQUESTS[verb]!, target, when)).replace(/^OK file recv \| /, '');
      const first = Object.values(replies)[0]!;
      expect({ verb, replies }).toEqual({ verb, replies: Object.fromEntries(Object.keys(replies).map((what) => [what, first])) });
      expect({ verb, first }).toEqual({ verb, first: expect.stringMatching(verb === 'resume' ? /^NOT FOUND / : /^ERR NAME_INVALID <name>(\/\S+)? resolves outside the storage root$/) });
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    expect(diffSnapshots(insideBefore, await snapshot(join(server.realRoot, 'inside')))).toEqual([]);
  }, 30_000);

  test('held: a name whose own last segment is a link is told "is a symbolic link", fresh and remembered, whatever it leads to', async () => {
    const { server, client, outside } = await setUp();
    const before = await snapshot(server.sentinel);
    const targets = { ...outside, insideFile: join(server.realRoot, 'inside', 'first'), insideFolder: join(server.realRoot, 'inside') };
    let n = 0;
    for (const verb of ['DOWNLOAD', 'STAT', 'DELETE', 'RENAME'] as const) {
      for (const [kind, target] of Object.entries(targets)) {
        for (const when of ['fresh', 'remembered']) {
          const k = `l${n++}`;
          await mkdir(join(server.realRoot, k));
          await writeFile(join(server.realRoot, k, 'first'), 'first');
          if (when === 'remembered') {
            await client.send(`STAT\n${k}/first\n`);
            expect(await client.readLine()).toMatch(/^OK stat file /);
          }
          await symlink(target, join(server.realRoot, k, 'l'));
          const request = verb === 'RENAME' ? `RENAME\n${k}/l\nelsewhere\n` : `${verb}\n${k}/l\n`;
          const reply = await ask(client, verb === 'DOWNLOAD' ? download(request) : line(request));
          expect({ verb, kind, when, reply }).toEqual({ verb, kind, when, reply: `ERR NAME_INVALID ${k}/l is a symbolic link; rxfer does not follow links` });
        }
      }
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test('held: under a swapper process (a folder on the way, to an outside folder), no reply says "is a symbolic link", nothing outside changes, OK means done inside, and another client is served', async () => {
    const { server, client } = await setUp();
    const d = join(server.realRoot, 'd');
    await mkdir(d);
    await writeFile(join(d, 'first'), 'first');
    const before = await snapshot(server.sentinel);
    const swapper = startSwapper(d, join(server.sentinel, 'with-x'), 3000);
    const stored: number[] = [];
    const links: string[] = [];
    try {
      for (let i = 0; i < 150; i++) {
        const kinds: Probe[] = [upload(`d/u${i}`, `u${i}`), line(batchRequest([{ name: `d/b${i}`, data: `b${i}` }]).toString('latin1')), line('STAT\nd/first\n'), download('DOWNLOAD\nd/first\n'), line(`MKDIR\nd/m${i}\n`), line(`RENAME\nsrc\nd/r${i}\n`)];
        const reply = await ask(client, kinds[i % kinds.length]!);
        if (reply.includes('is a symbolic link')) links.push(`${i}: ${reply}`);
        if (/^OK file recv \| OK/.test(reply)) stored.push(i);
        await writeFile(join(server.realRoot, 'src'), 'src');
      }
    } finally {
      await swapper.done;
    }
    expect(links).toEqual([]);
    // Each upload answered OK is in d, or in a d the server made again while the real one was parked (moved aside as d.stray-<n>).
    const strays = (await readdir(server.realRoot)).filter((name) => name === 'd' || name.startsWith('d.stray-'));
    for (const i of stored) {
      const found = await Promise.all(strays.map((f) => readFile(join(server.realRoot, f, `u${i}`), 'utf8').catch(() => undefined)));
      expect({ i, found: found.filter((x) => x !== undefined) }).toEqual({ i, found: [`u${i}`] });
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    const other = await connect(server.port);
    expect(await ask(other, line('STAT\nd/first\n'))).toMatch(/^OK stat file 5 /);
  }, 30_000);
});
