import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RawClient, downloadRequest, uploadRequest } from '../helpers/raw-client';
import { watchFolderSyncs } from '../helpers/folder-syncs';
import { eventually } from '../ops/ops-support';
import { type TestUser, diffSnapshots, makeUser, snapshot } from '../security/support/server';
import { type Probe, GUARD_MS, line, linkAttackHarness, readReply, startSwapper, swapForLink, upload, withoutName } from './support/link-attack';

/**
 * Hostile pass of 2026-12-05 (l), against pass k (ADDFILE's and large uploads' early look, a
 * quota's "size replaced", SmallCommits' `taken` and the folder fsyncs now go through the checked
 * folder, opened). The attacker: a local user who can write in the storage root and swaps a folder
 * for a link to outside it (the server's realpath check of a folder is remembered for a second),
 * plus clients over the protocol comparing replies for names that exist outside and names that do not.
 *
 * FOUND (these tests failed on the code of pass k; all four fixed in the same session: a read that
 * fails below a checked folder that is now a link, and a missing name below a link that leads
 * nowhere, are refused as NAME_INVALID like a name outside, whatever lies out there; an opened-folder
 * look whose open fails through a link says ELOOP; a change's folder is fsynced through the very
 * descriptor it was made through):
 *
 *   1. DOWNLOAD is an existence oracle under a swapped folder. Reproduction: `STAT d/first` (caches the
 *      check of d), `mv d d.parked; ln -s <outside> d`, then `DOWNLOAD d/secret.txt` →
 *      `ERR NAME_INVALID … resolves outside the storage root` (also for a folder or a large file out
 *      there) but `DOWNLOAD d/nothing` → `NOT FOUND`. LocalFsStorage.openRead (small-reads and the
 *      large-file open) still opens `pathOf(name)` by path, then refuses what it opened outside:
 *      whether the open found anything is in the reply. Same for `DOWNLOAD FROM`.
 *   2. LIST is an existence oracle through any link to outside, no race and no cache needed.
 *      Reproduction: `ln -s <outside> <root>/d`, then `LIST d/secret.txt` → `ERR NAME_INVALID`, but
 *      `LIST d/nothing` → `OK list 0 0`. LocalFsStorage.list realpaths the listed folder and answers an
 *      empty listing when realpath fails, without checking where its existing part leads.
 *   3. The link's own target is classified (folder / file / nothing) with a cached check: `ln -s P d`
 *      after `STAT d/first`: `ADDFILE d/x` is refused at its header (NAME_INVALID) if P is a folder (the
 *      open in lookInOpenedFolderSync reaches it and the readlink check refuses), accepted if P is a
 *      file or missing (absentAsUndefined takes the *folder's* ENOTDIR/ENOENT for "no such name"), and
 *      its final reply then differs ("a folder and a file would share a name" for a file, "cannot
 *      create the folder … a file is in the way" for nothing); `DOWNLOAD d/x` answers NAME_CONFLICT if
 *      P is a file, NOT FOUND otherwise.
 *   4. A folder fsync of the wrong folder still answers OK. fsyncCheckedFolder (pass k) compared paths only:
 *      if a local user renames the folder away (`mv d d.parked; mkdir d`) between the change (made in
 *      d's old inode, through its own descriptor) and the fsync, the new empty d is the one opened,
 *      passes the readlink check, and is synced; `DELETE d/x` answers `OK deleted` though nothing
 *      synced the folder that holds the change (d.parked). Minor (durability, needs a real-folder
 *      replacement in that window), but it is the "OK whose fsync went elsewhere" this pass closed for links.
 *
 * Held (tests below): every other verb (STAT, DELETE, RENAME both ways, MKDIR, UPLOAD small and large,
 * ADDFILE, RESUME, a quota user's uploads) answers a name below a swapped folder the same whatever lies
 * outside, and nothing outside changes; a link swapped in between a change and its fsync: the change
 * is in the parked real folder, and OK only once that folder (not the link's target) is synced; under a swap loop every OK / NOT_DURABLE is
 * true and every other ERR changed nothing; ADDFILE races on one name have one winner; quotas stay
 * exact; a folder removed by a local user after its check is made again; the staging area ends empty.
 */

const MiB = 1024 * 1024;
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');


describe('hostile 2026-12-05 (l): attacks on the looks and fsyncs through opened folders', () => {
  const { serve, connect, cleanups } = linkAttackHarness();
  /** Folder-fsync watches to undo (watchFolderSyncs patches fs/promises' open). */
  const restores: (() => void)[] = [];
  afterEach(() => {
    for (const restore of restores.splice(0)) restore();
  });
  const reply = readReply;

  /**
   * The replies to `make(name)` for each name, each sent right after a STAT of `d/first` has
   * checked d (and the server remembered the check) and d was then swapped for a link to `target(name)`.
   */
  const probeUnderSwap = async (client: RawClient, folder: string, names: string[], target: (name: string) => string, make: (name: string) => Probe): Promise<string[]> => {
    const replies: string[] = [];
    for (const name of names) {
      await client.send('STAT\nd/first\n');
      expect(await client.readLine()).toMatch(/^OK stat file /);
      const undo = await swapForLink(folder, target(name));
      const probe = make(name);
      await client.send(probe.bytes);
      replies.push(await reply(client, probe));
      await undo();
    }
    return replies;
  };
  /** A fresh server with d/first inside and, outside: secret.txt (small), a-folder, big.bin (2 MiB). */
  const serveWithOutside = async (users: TestUser[] = [], jail = '') => {
    const server = await serve(users);
    const d = join(server.realRoot, jail, 'd');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'first'), 'first');
    await mkdir(join(server.sentinel, 'a-folder'));
    await writeFile(join(server.sentinel, 'big.bin'), randomBytes(2 * MiB));
    return { server, d, before: await snapshot(server.sentinel) };
  };
  const OUTSIDE_NAMES = ['secret.txt', 'a-folder', 'big.bin', 'nothing'];

  test('FOUND 1: DOWNLOAD of a name below a swapped folder answers the same whether the name exists outside the root (file, folder, large file) or not', async () => {
    const { server, d, before } = await serveWithOutside();
    const client = await connect(server.port);
    for (const make of [(n: string): Probe => ({ kind: 'download', bytes: downloadRequest(`d/${n}`) }), (n: string): Probe => ({ kind: 'download', bytes: Buffer.from(`DOWNLOAD FROM 5 ${sha256('xxxxx')}\nd/${n}\n`) })]) {
      const replies = await probeUnderSwap(client, d, OUTSIDE_NAMES, () => server.sentinel, make);
      // Now: NAME_INVALID ×3 (the open found something outside) and NOT FOUND for the missing name.
      expect(replies.map((r, i) => withoutName(r, OUTSIDE_NAMES[i]!))).toEqual(Array(4).fill(withoutName(replies[3]!, 'nothing')));
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test('FOUND 2: LIST of a name below a link to outside the root (planted, no race) answers the same whether it exists out there or not', async () => {
    const { server, d, before } = await serveWithOutside();
    await swapForLink(d, server.sentinel);
    const client = await connect(server.port);
    const replies: string[] = [];
    for (const name of OUTSIDE_NAMES) {
      const probe: Probe = { kind: 'list', bytes: Buffer.from(`LIST\nd/${name}\n`) };
      await client.send(probe.bytes);
      replies.push(withoutName(await reply(client, probe), name));
    }
    // Now: ERR NAME_INVALID ×3 against OK list 0 0 for the name that is not there.
    expect(new Set(replies).size).toBe(1);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test("FOUND 3: under a swapped folder, ADDFILE and DOWNLOAD of one name answer the same whether the link's target outside is a folder, a file or nothing", async () => {
    const { server, d, before } = await serveWithOutside();
    const client = await connect(server.port);
    const targets = ['a-folder', 'secret.txt', 'nothing'];
    for (const make of [(): Probe => upload('d/x', 'probe', 'ADDFILE'), (): Probe => ({ kind: 'download', bytes: downloadRequest('d/x') })]) {
      const replies = await probeUnderSwap(client, d, targets, (t) => join(server.sentinel, t), make);
      // Now, ADDFILE: NAME_INVALID at the header for a folder; accepted, then two different NAME_CONFLICTs.
      // DOWNLOAD: NOT FOUND, NAME_CONFLICT, NOT FOUND.
      expect(new Set(replies).size).toBe(1);
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test('held: every other verb, and a quota user, answer a name below a swapped folder the same whatever lies outside, and nothing outside changes', async () => {
    const alice = await makeUser('alice', 'write', 'alice', 300 * 1024);
    const { server, d, before } = await serveWithOutside([alice], 'alice');
    const client = await connect(server.port, alice.token);
    const verbs: Record<string, (n: string) => Probe> = {
      stat: (n) => line(`STAT\nd/${n}\n`),
      delete: (n) => line(`DELETE\nd/${n}\n`),
      renameFrom: (n) => line(`RENAME\nd/${n}\nelsewhere\n`),
      renameTo: (n) => line(`RENAME\nd/first\nd/${n}\n`),
      mkdir: (n) => line(`MKDIR\nd/${n}\n`),
      mkdirBelow: (n) => line(`MKDIR\nd/${n}/x\n`),
      resume: (n) => line(`RESUME\nd/${n}\n`),
      upload: (n) => upload(`d/${n}`, 'probe'),
      addfile: (n) => upload(`d/${n}`, 'probe', 'ADDFILE'),
      // Over alice's 300 KiB unless the "file replaced" outside (2 MiB) were counted: the size oracle of pass k.
      uploadOverQuota: (n) => upload(`d/${n}`, Buffer.alloc(400 * 1024, 2)),
      uploadLarge: (n) => upload(`d/${n}`, Buffer.alloc(MiB, 1)),
      resumeFrom: (n) => ({ kind: 'upload', bytes: Buffer.concat([Buffer.from(`UPLOAD ${MiB} FROM 1024 ${sha256(Buffer.alloc(1024))}\nd/${n}\n`), Buffer.alloc(MiB - 1024), Buffer.from(`SHA256 ${sha256(Buffer.alloc(MiB))}\n`)]) }),
    };
    for (const [verb, make] of Object.entries(verbs)) {
      const replies = await probeUnderSwap(client, d, OUTSIDE_NAMES, () => server.sentinel, make);
      const normalized = replies.map((r, i) => withoutName(r, OUTSIDE_NAMES[i]!));
      expect({ verb, replies: normalized }).toEqual({ verb, replies: Array(4).fill(normalized[3]) });
      for (const r of replies) expect(r).toMatch(/^(NOT FOUND|ERR [A-Z_]+|OK file recv \| ERR [A-Z_]+) \S/);
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    expect(await readFile(join(d, 'first'), 'utf8')).toBe('first');
    expect(await readdir(join(server.realRoot, '.rxfer', 'staging'))).toEqual([]);
  });

  describe('folder fsyncs after a change, with the folder changed between the change and its fsync', () => {
    /**
     * Runs `swap(folder)` once, synchronously, just before the server fsyncs `folder` (through the
     * descriptor it made the change through: opened-paths.ts), and records the inode of every handle
     * opened on `folder` that is synced.
     */
    const atFolderFsync = (folder: string, swap: () => void): number[] => {
      const synced: number[] = [];
      let swapped = false;
      restores.push(
        watchFolderSyncs({
          before: async (path, handle) => {
            if (path !== folder) return;
            if (!swapped) {
              swapped = true;
              swap();
            }
            synced.push((await handle.stat()).ino);
          },
        }).restore,
      );
      return synced;
    };
    const changes: [string, Probe, (d: string) => Promise<void>][] = [
      ['DELETE', line('DELETE\nd/x\n'), async (d) => expect(await lstat(join(d, 'x')).catch(() => undefined)).toBeUndefined()],
      ['RENAME', line('RENAME\nd/x\nd/y\n'), async (d) => expect(await readFile(join(d, 'y'), 'utf8')).toBe('x')],
      ['MKDIR', line('MKDIR\nd/m\n'), async (d) => expect((await stat(join(d, 'm'))).isDirectory()).toBe(true)],
      ['a 100 KiB upload', upload('d/up', Buffer.alloc(100 * 1024, 7)), async (d) => expect((await readFile(join(d, 'up'))).equals(Buffer.alloc(100 * 1024, 7))).toBe(true)],
    ];

    test.each(changes)('%s, its folder swapped for a link to outside before the fsync: the folder holding the change (parked) is the one synced, and only then OK; nothing outside', async (_verb, probe, check) => {
      const { server, d, before } = await serveWithOutside();
      await writeFile(join(d, 'x'), 'x');
      const parkedIno = (await stat(d)).ino;
      const synced = atFolderFsync(d, () => {
        renameSync(d, `${d}.parked`);
        symlinkSync(server.sentinel, d);
      });
      const client = await connect(server.port);
      await client.send(probe.bytes);
      const answer = await reply(client, probe);
      await check(`${d}.parked`);
      // OK is true only if what was synced is the folder that holds the change; NOT_DURABLE is always true here.
      const onlyTheParked = synced.length > 0 && synced.every((ino) => ino === parkedIno);
      expect({ answer, onlyTheParked }).toEqual(/ERR NOT_DURABLE \S/.test(answer) ? { answer, onlyTheParked: expect.any(Boolean) } : { answer: expect.stringMatching(/OK/), onlyTheParked: true });
      expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    });

    test('FOUND 4: DELETE, its folder replaced by a new real folder (mv d d.parked; mkdir d) before the fsync: not OK unless the folder holding the change was synced', async () => {
      const { server, d } = await serveWithOutside();
      await writeFile(join(d, 'x'), 'x');
      const parkedIno = (await stat(d)).ino;
      const synced = atFolderFsync(d, () => {
        renameSync(d, `${d}.parked`);
        mkdirSync(d);
      });
      const client = await connect(server.port);
      await client.send('DELETE\nd/x\n');
      const answer = await client.readLine();
      expect(await lstat(join(`${d}.parked`, 'x')).catch(() => undefined)).toBeUndefined();
      // Now: "OK deleted", with only the new, empty d synced (the readlink check compares paths).
      expect({ answer, syncedTheChangedFolder: synced.includes(parkedIno) }).toEqual(
        answer.startsWith('OK') ? { answer, syncedTheChangedFolder: true } : { answer: expect.stringMatching(/^ERR NOT_DURABLE \S/), syncedTheChangedFolder: expect.any(Boolean) },
      );
    });
  });

  test('held: DELETE, RENAME, MKDIR and uploads raced by a swap loop: every OK and NOT_DURABLE is true, every other refusal changed nothing, nothing outside changes, staging ends empty', async () => {
    const { server, d, before } = await serveWithOutside();
    const rounds = 40;
    for (let i = 0; i < rounds; i++) {
      await writeFile(join(d, `f-${i}`), `f-${i}`);
      await writeFile(join(d, `g-${i}`), `g-${i}`);
    }
    const client = await connect(server.port);
    const swapper = startSwapper(d, server.sentinel, 2500);
    cleanups.push(async () => void swapper.child.kill());
    const bodyOf = (i: number) => Buffer.alloc(100 * 1024 + i, i);
    const answers: { i: number; replies: string[] }[] = [];
    let finished = false;
    void swapper.done.then(() => (finished = true), () => (finished = true));
    for (let i = 0; i < rounds && !finished; i++) {
      const probes = [line(`DELETE\nd/f-${i}\n`), line(`RENAME\nd/g-${i}\nd/h-${i}\n`), line(`MKDIR\nd/m-${i}\n`), upload(`d/u-${i}`, bodyOf(i))];
      await client.send(Buffer.concat(probes.map((p) => p.bytes)));
      const replies: string[] = [];
      for (const p of probes) replies.push(await reply(client, p));
      answers.push({ i, replies });
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await swapper.done;

    // Where a change may land: the real folder, or a folder the server made again while it was away.
    const folders = [d, ...(await readdir(server.realRoot)).filter((n) => n.startsWith('d.stray-')).map((n) => join(server.realRoot, n))];
    const at = async (name: string) => (await Promise.all(folders.map((f) => lstat(join(f, name)).then((s) => ({ f, s }), () => undefined)))).filter((x) => x !== undefined);
    const done = (r: string) => r.startsWith('OK') || /ERR NOT_DURABLE /.test(r);
    for (const { i, replies } of answers) {
      const [del, ren, mk, up] = replies as [string, string, string, string];
      for (const r of replies) expect(r).toMatch(/^(OK|NOT FOUND \S|ERR [A-Z_]+ \S|OK file recv \| (OK|ERR [A-Z_]+ \S))/);
      expect({ i, del, present: (await at(`f-${i}`)).length }).toEqual({ i, del, present: done(del) ? 0 : 1 });
      expect({ i, ren, old: (await at(`g-${i}`)).length, new: (await at(`h-${i}`)).length }).toEqual({ i, ren, old: done(ren) ? 0 : 1, new: done(ren) ? 1 : 0 });
      const made = await at(`m-${i}`);
      expect({ i, mk, made: made.length }).toEqual({ i, mk, made: done(mk) ? 1 : 0 });
      const upFinal = up.replace(/^OK file recv \| /, '');
      const stored = await at(`u-${i}`);
      expect({ i, up, stored: stored.length }).toEqual({ i, up, stored: done(upFinal) ? 1 : 0 });
      for (const { f } of stored) expect((await readFile(join(f, `u-${i}`))).equals(bodyOf(i))).toBe(true);
    }
    expect(answers.length).toBeGreaterThan(0);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    await eventually('the staging area to be empty', async () => ((await readdir(join(server.realRoot, '.rxfer', 'staging'))).length === 0 ? true : undefined), GUARD_MS);
    // The server serves on, for this client and a new one.
    for (const c of [client, await connect(server.port)]) {
      await c.send(uploadRequest('d/after', 'after'));
      expect(await c.readUploadOutcome(GUARD_MS)).toMatch(/^OK file data recv 5 /);
    }
  });

  test('held: ADDFILE races on one name, small and large, from many connections: exactly one wins and its bytes are stored', async () => {
    const server = await serve();
    for (const [name, size] of [['d/small', 1000], ['d/large', MiB + 10]] as const) {
      const racers = await Promise.all(Array.from({ length: 6 }, () => connect(server.port)));
      const bodies = racers.map(() => randomBytes(size));
      await Promise.all(racers.map((c, i) => c.send(uploadRequest(name, bodies[i]!, { verb: 'ADDFILE' }))));
      const outcomes = await Promise.all(racers.map((c) => c.readUploadOutcome(GUARD_MS)));
      const winners = outcomes.flatMap((o, i) => (o.startsWith('OK file data recv') ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const o of outcomes) expect(o).toMatch(/^(OK file data recv|ERR EXISTS) /);
      expect((await readFile(join(server.realRoot, name))).equals(bodies[winners[0]!]!)).toBe(true);
    }
    expect(await readdir(join(server.realRoot, '.rxfer', 'staging'))).toEqual([]);
  });

  test('held: without any swap, a quota is exact: up to the byte accepted, one byte more refused, replacements counted by what they replace', async () => {
    const alice = await makeUser('alice', 'write', 'alice', 300_000);
    const server = await serve([alice]);
    const client = await connect(server.port, alice.token);
    const put = async (name: string, size: number) => {
      await client.send(uploadRequest(name, Buffer.alloc(size, 3)));
      return client.readUploadOutcome(GUARD_MS);
    };
    const OK = /^OK file data recv /;
    const OVER = /^ERR QUOTA_EXCEEDED /;
    expect(await put('d/a', 150_000)).toMatch(OK); // a large (staged) file
    expect(await put('d/b', 150_000)).toMatch(OK); // exactly at the quota
    expect(await put('d/c', 1)).toMatch(OVER);
    expect(await put('d/a', 150_000)).toMatch(OK); // replaces as much as it adds
    expect(await put('d/a', 150_001)).toMatch(OVER);
    expect(await put('d/b', 10)).toMatch(OK); // a small file replacing a large one frees 149,990
    expect(await put('d/c', 149_990)).toMatch(OK); // exactly at the quota again
    expect(await put('d/e', 1)).toMatch(OVER);
    expect((await readdir(join(server.realRoot, 'alice', 'd'))).sort()).toEqual(['a', 'b', 'c']);
  });

  test('held: a folder removed by a local user after its check (or replaced by a file, or moved and linked inside the root) is made again, or refused cleanly', async () => {
    const alice = await makeUser('alice', 'write', 'alice', 10 * MiB);
    const { server, d } = await serveWithOutside([alice], 'alice');
    const client = await connect(server.port, alice.token);
    const checkD = async () => {
      await client.send('STAT\nd/first\n');
      expect(await client.readLine()).toMatch(/^OK stat file /);
    };
    // Removed: ADDFILE (looked at before data), a large upload (looked at, kept as partial) and a small quota upload.
    const big = randomBytes(2 * MiB);
    for (const [name, body, verb] of [['d/x', 'x', 'ADDFILE'], ['d/big', big, 'UPLOAD'], ['d/small', 'small', 'UPLOAD']] as const) {
      await checkD();
      await rm(d, { recursive: true });
      await client.send(uploadRequest(name, body, { verb }));
      expect(await client.readUploadOutcome(GUARD_MS)).toMatch(/^OK file data recv /);
      expect((await readFile(join(server.realRoot, 'alice', name))).equals(Buffer.from(body))).toBe(true);
      await writeFile(join(d, 'first'), 'first');
    }
    // Replaced by a file: a clean refusal; the file stays as it was.
    await checkD();
    await rm(d, { recursive: true });
    await writeFile(d, 'a file now');
    await client.send(uploadRequest('d/y', 'y', { verb: 'ADDFILE' }));
    expect(await client.readUploadOutcome(GUARD_MS)).toMatch(/^ERR NAME_CONFLICT \S/);
    expect(await readFile(d, 'utf8')).toBe('a file now');
    await rm(d);
    await mkdir(d);
    await writeFile(join(d, 'first'), 'first');
    // Moved to e and linked back, inside the root: refused cleanly while the old check is remembered,
    // then (the link is inside the root) it works and lands in the real folder.
    await checkD();
    await rename(d, `${d}-e`);
    await symlink(`${d}-e`, d);
    await eventually('ADDFILE through the inside link to be stored', async () => {
      await client.send(uploadRequest('d/z', 'z', { verb: 'ADDFILE' }));
      const outcome = await client.readUploadOutcome(GUARD_MS);
      if (outcome.startsWith('OK file data recv')) return true;
      expect(outcome).toMatch(/^ERR NAME_INVALID \S/);
      return undefined;
    }, GUARD_MS);
    expect(await readFile(join(`${d}-e`, 'z'), 'utf8')).toBe('z');
    expect(await readdir(join(server.realRoot, '.rxfer', 'staging'))).toEqual([]);
  });
});
