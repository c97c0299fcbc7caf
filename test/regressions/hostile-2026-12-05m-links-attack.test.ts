import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diffSnapshots, makeUser, snapshot } from '../security/support/server';
import { type Probe, ask, download, line, linkAttackHarness, listing, upload, withoutName } from './support/link-attack';

/**
 * Hostile pass of 2026-12-05 (m), against pass l's fixes (asSeenFromTheCheck for DOWNLOAD,
 * realOrMissing/existingAncestor refusing a link that leads nowhere, openCheckedFolder's ELOOP for a
 * failed open through a link, folder fsyncs through the change's own descriptor). The attacker: a
 * local user who can write in the storage and plants links, or swaps a folder for a link after the
 * server checked it (the check is remembered for 1 s), plus clients over real sockets comparing
 * replies for what lies at the link's end: an outside folder, file, nothing, a link loop, another
 * user's folder.
 *
 * FOUND (these tests failed on the code of pass l; all three fixed in the same session: the commit
 * worker's open of a folder, and of its staging folder, that fails through a link now swapped in says
 * ELOOP whatever the link leads to (fd-paths.js linkOnTheWaySync); a quota's measure of a user's
 * folder resolves and checks it like any name (realOrMissing) and never walks a link; a loop of links
 * is refused as outsideTheRoot):
 *
 *   1. A small UPLOAD (≤ 64 KiB, a user without a quota) below a swapped folder tells what the link's
 *      target outside is. Reproduction: `STAT d/first` (caches the check of d), then
 *      `mv d d.parked; ln -s <P> d`, then `UPLOAD 5` `d/x` `probe` `SHA256 …` →
 *        P an outside folder:  `OK file recv` / `ERR NAME_INVALID d/x is a symbolic link; rxfer does not follow links`
 *        P an outside file:    `OK file recv` / `ERR NAME_CONFLICT cannot store d/x: a folder and a file would share a name`
 *        P missing:            `OK file recv` / `ERR NAME_INVALID d/x resolves outside the storage root`
 *      Same at grandparent level (`a/b` checked, `a` swapped; P with or without a `b` in it: the
 *      "symbolic link" reply says `P/b` exists). Cause: small-commit.worker.js `openFolders` opens
 *      `job.folder` with a plain openSync: ENOTDIR goes back as NAME_CONFLICT, ENOENT makes
 *      inFolderFor re-check (outsideTheRoot), only a reached folder fails the readlink check (ELOOP).
 *      Pass l fixed this in openCheckedFolder (main thread: medium/large uploads, ADDFILE, quota
 *      users' looks) but not in the worker (pass l's "held" test used a quota user, whose small
 *      uploads look through the main thread first, and one target kind only).
 *   2. A quota user whose own root folder is a link counts what lies at its end. Reproduction: users
 *      alice (root `alice`, quotaBytes 300000) and bob (root `bob`); `ln -s <P> <storage>/alice`
 *      before alice's first upload; alice sends `ADDFILE 5` `x` … →
 *        P an outside folder holding 2 MiB: `ERR QUOTA_EXCEEDED alice uses 2097174 of 300000 bytes; 5 more do not fit`
 *        P `bob` (bob stores 500000 bytes):  `ERR QUOTA_EXCEEDED alice uses 500000 of 300000 bytes; …`
 *        P missing:                          `ERR NAME_INVALID x resolves outside the storage root`
 *      LocalFsStorage.usage → folderBytes(<root>/alice) readdirs by path, following the link, and
 *      QuotaLedger.reserve measures before anything checks the name (ADDFILE skips sizeOf, whose
 *      existingFolderOf would have refused first). The exact byte count of any readable folder
 *      outside, or of another user's storage, is in the reply.
 *   3. A link to an outside link loop is refused in other words than a link to anything else outside.
 *      Reproduction: outside, `ln -s loop loop` (or any chain of more than 40 links); in the storage,
 *      `ln -s <outside>/loop d` → `DOWNLOAD d/x` (also STAT, DELETE, LIST d, UPLOAD, MKDIR d/x) →
 *      `ERR NAME_INVALID d/x is a symbolic link; rxfer does not follow links`, but with `ln -s
 *      <outside>/nothing d` (or a folder, a file) → `ERR NAME_INVALID d/x resolves outside the storage root`.
 *      realOrMissing/existingAncestor pass realpath's ELOOP to storageError instead of refusing it as
 *      outsideTheRoot. Minor (same code, and it tells only that a name out there is a link loop),
 *      but it is a reply that depends on what lies outside. (Also with a cached check: `LIST d`,
 *      `MKDIR d/x/y`, `UPLOAD d/x/y` after the swap.)
 *
 * Held (tests below): with planted links (to an outside folder with or without the name, a file,
 * nothing; absolute, relative with `..`, a chain through a link inside; at parent and grandparent
 * level) every verb answers the same whatever is out there — UPLOAD small/medium/large, ADDFILE,
 * UPLOAD … FROM, RESUME, DOWNLOAD, DOWNLOAD … FROM, STAT, DELETE, RENAME both sides, MKDIR, LIST,
 * LIST PAGED / AFTER / FOLDERS / SHALLOW; under a swap after a cached check, every verb but the small
 * UPLOAD (finding 1) answers the same; links from alice's folder into bob's answer as links outside,
 * and bob's files stay as they were; a user's root that is a link is refused (NAME_INVALID) for every
 * verb that checks a name; nothing outside the root ever changes and every refusal changed nothing;
 * links inside the root to folders inside still work for every verb (the change lands in the real
 * folder), missing names are still NOT FOUND, a missing folder still lists empty, uploads still make
 * missing folders, a dangling link inside is NAME_INVALID; a folder renamed away after its check
 * (`mv d d.moved`) is made again and OK means the file is in the new d.
 */

const MiB = 1024 * 1024;
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Every verb on names below the folder `k` (`k/<rest>`); `src` names a file that exists, for RENAME's source. */
const VERBS: Record<string, (k: string, rest: string, src: string) => Probe> = {
  uploadSmall: (k, r) => upload(`${k}/${r}`, 'probe'),
  uploadMedium: (k, r) => upload(`${k}/${r}`, Buffer.alloc(100 * 1024, 1)),
  uploadLarge: (k, r) => upload(`${k}/${r}`, Buffer.alloc(MiB + 5, 1)),
  addfile: (k, r) => upload(`${k}/${r}`, 'probe', 'ADDFILE'),
  addfileMedium: (k, r) => upload(`${k}/${r}`, Buffer.alloc(100 * 1024, 1), 'ADDFILE'),
  uploadFrom: (k, r) => ({ kind: 'upload', bytes: Buffer.concat([Buffer.from(`UPLOAD ${MiB} FROM 1024 ${sha256(Buffer.alloc(1024))}\n${k}/${r}\n`), Buffer.alloc(MiB - 1024), Buffer.from(`SHA256 ${sha256(Buffer.alloc(MiB))}\n`)]) }),
  resume: (k, r) => line(`RESUME\n${k}/${r}\n`),
  download: (k, r) => download(`DOWNLOAD\n${k}/${r}\n`),
  downloadFrom: (k, r) => download(`DOWNLOAD FROM 5 ${sha256('xxxxx')}\n${k}/${r}\n`),
  stat: (k, r) => line(`STAT\n${k}/${r}\n`),
  delete: (k, r) => line(`DELETE\n${k}/${r}\n`),
  renameFrom: (k, r) => line(`RENAME\n${k}/${r}\nelsewhere\n`),
  renameTo: (k, r, src) => line(`RENAME\n${src}\n${k}/${r}\n`),
  mkdir: (k, r) => line(`MKDIR\n${k}/${r}\n`),
  mkdirBelow: (k, r) => line(`MKDIR\n${k}/${r}/m\n`),
  uploadBelow: (k, r) => upload(`${k}/${r}/y`, 'probe'),
  list: (k, r) => listing(`LIST\n${k}/${r}\n`),
  listFolder: (k) => listing(`LIST\n${k}\n`),
  listPaged: (k, r) => listing(`LIST PAGED\n${k}/${r}\n`),
  listAfter: (k, r) => listing(`LIST AFTER\n${k}/${r}\n${k}/${r}/a\n`),
  listFoldersShallow: (k, r) => listing(`LIST PAGED FOLDERS SHALLOW\n${k}/${r}\n`),
  listFolders: (k) => listing(`LIST FOLDERS\n${k}\n`),
};


describe('hostile 2026-12-05 (m): links planted or swapped in, against the fixes of pass l', () => {
  const { serve, connect } = linkAttackHarness();

  /**
   * Outside the root (in the watched sentinel folder): secret.txt (a file), with-x/ (a folder holding
   * x, a 2 MiB big.bin, and sub/x), a-folder/ (empty), loop (a link to itself). `targets`: where a
   * planted link may lead, by kind; `nothing` does not exist.
   */
  const outside = async (sentinel: string) => {
    await mkdir(join(sentinel, 'with-x', 'sub'), { recursive: true });
    await writeFile(join(sentinel, 'with-x', 'x'), 'x outside');
    await writeFile(join(sentinel, 'with-x', 'sub', 'x'), 'sub x outside');
    await writeFile(join(sentinel, 'with-x', 'big.bin'), Buffer.alloc(2 * MiB, 9));
    await mkdir(join(sentinel, 'a-folder'));
    await symlink(join(sentinel, 'loop'), join(sentinel, 'loop'));
    return {
      folderWithX: join(sentinel, 'with-x'),
      emptyFolder: join(sentinel, 'a-folder'),
      file: join(sentinel, 'secret.txt'),
      nothing: join(sentinel, 'nothing'),
      loop: join(sentinel, 'loop'),
    };
  };
  /** Which entries of the storage root (the server's own .rxfer aside) are there now. */
  const userSnapshot = async (realRoot: string) => snapshot(realRoot, [join(realRoot, '.rxfer')]);

  test('FOUND 1: a small UPLOAD below a folder swapped after its check answers the same whatever the link leads to outside (a folder, a file, nothing), at parent and grandparent level', async () => {
    const server = await serve();
    const targets = await outside(server.sentinel);
    const d = join(server.realRoot, 'd');
    const a = join(server.realRoot, 'a');
    await mkdir(d);
    await writeFile(join(d, 'first'), 'first');
    await mkdir(join(a, 'b'), { recursive: true });
    await writeFile(join(a, 'b', 'first'), 'first');
    await mkdir(join(targets.folderWithX, 'b'));
    const before = await snapshot(server.sentinel);
    const client = await connect(server.port);
    const probeUnderSwap = async (folder: string, checked: string, name: string, target: string) => {
      await client.send(`STAT\n${checked}\n`);
      expect(await client.readLine()).toMatch(/^OK stat file /);
      await rename(folder, `${folder}.parked`);
      await symlink(target, folder);
      const answer = await ask(client, upload(name, 'probe'));
      await unlink(folder);
      await rename(`${folder}.parked`, folder);
      return answer;
    };
    const kinds = { folder: targets.folderWithX, file: targets.file, nothing: targets.nothing } as const;
    const parent: Record<string, string> = {};
    for (const [kind, target] of Object.entries(kinds)) parent[kind] = await probeUnderSwap(d, 'd/first', 'd/x', target);
    // Grandparent: `a` swapped, the checked folder a/b exists at the link's end (with-x/b) or not.
    const grand: Record<string, string> = {};
    for (const [kind, target] of Object.entries({ folderWithB: targets.folderWithX, folderWithoutB: targets.emptyFolder, file: targets.file, nothing: targets.nothing })) {
      grand[kind] = await probeUnderSwap(a, 'a/b/first', 'a/b/x', target);
    }
    // Nothing was stored anywhere, nothing outside changed.
    expect(await readdir(d)).toEqual(['first']);
    expect(await readdir(join(a, 'b'))).toEqual(['first']);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    for (const r of [...Object.values(parent), ...Object.values(grand)]) expect(r).toMatch(/^(ERR [A-Z_]+ \S|OK file recv \| ERR [A-Z_]+ \S)/);
    // Now: "is a symbolic link" (folder), NAME_CONFLICT (file), "resolves outside the storage root" (nothing).
    expect(parent).toEqual({ folder: parent.nothing, file: parent.nothing, nothing: parent.nothing });
    expect(grand).toEqual({ folderWithB: grand.nothing, folderWithoutB: grand.nothing, file: grand.nothing, nothing: grand.nothing });
  });

  test("FOUND 2: a quota user whose own root is a link gets the same ADDFILE reply whatever it leads to (an outside folder, another user's folder, nothing): no byte count of what is out there", async () => {
    const replies: Record<string, string> = {};
    for (const kind of ['outsideFolder', 'bobsFolder', 'nothing'] as const) {
      const alice = await makeUser('alice', 'write', 'alice', 300_000);
      const bob = await makeUser('bob', 'write', 'bob');
      const server = await serve([alice, bob]);
      const targets = await outside(server.sentinel);
      await mkdir(join(server.realRoot, 'bob'));
      await writeFile(join(server.realRoot, 'bob', 'bobs.bin'), Buffer.alloc(500_000, 4));
      const before = await snapshot(server.sentinel);
      const bobsBefore = await snapshot(join(server.realRoot, 'bob'));
      await symlink({ outsideFolder: targets.folderWithX, bobsFolder: join(server.realRoot, 'bob'), nothing: targets.nothing }[kind], join(server.realRoot, 'alice'));
      const client = await connect(server.port, alice.token);
      replies[kind] = await ask(client, upload('x', 'probe', 'ADDFILE'));
      // Every other verb that names a file refuses alice's linked root the same way, whatever it leads to.
      for (const probe of [upload('x', 'probe'), line('STAT\nx\n'), download('DOWNLOAD\nx\n'), line('MKDIR\nm\n'), listing('LIST\n\n'), line('DELETE\nx\n')]) {
        expect({ kind, request: probe.bytes.subarray(0, 12).toString(), reply: await ask(client, probe) }).toEqual({ kind, request: probe.bytes.subarray(0, 12).toString(), reply: expect.stringMatching(/^ERR NAME_INVALID \S+ resolves outside the storage root$/) });
      }
      expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
      expect(diffSnapshots(bobsBefore, await snapshot(join(server.realRoot, 'bob')))).toEqual([]);
    }
    // Now: QUOTA_EXCEEDED "alice uses 2097174 …" (the outside folder's bytes: 2 MiB + 22), "alice uses 500000 …"
    // (bob's), and NAME_INVALID for a link that leads nowhere.
    expect(replies).toEqual({ outsideFolder: replies.nothing, bobsFolder: replies.nothing, nothing: replies.nothing });
  });

  test('FOUND 3: a planted link to an outside link loop is refused in the same words as a link to anything else outside', async () => {
    const server = await serve();
    const targets = await outside(server.sentinel);
    const client = await connect(server.port);
    const verbs = ['download', 'stat', 'delete', 'listFolder', 'uploadMedium', 'mkdir'] as const;
    const replies: Record<string, Record<string, string>> = {};
    let n = 0;
    for (const kind of ['loop', 'nothing', 'emptyFolder'] as const) {
      replies[kind] = {};
      for (const verb of verbs) {
        const k = `loop-probe-${n++}`;
        await symlink(targets[kind], join(server.realRoot, k));
        replies[kind]![verb] = withoutName(await ask(client, VERBS[verb]!(k, 'x', 'unused')), k);
      }
    }
    // Now, for the loop: "<k>/x is a symbolic link; rxfer does not follow links"; for the others "… resolves outside the storage root".
    expect(replies.loop).toEqual(replies.nothing);
    expect(replies.emptyFolder).toEqual(replies.nothing);
  });

  test('held: planted links (absolute, relative with .., through a chain; below them one and two levels) get, for every verb, one reply whatever is at their end; nothing outside or inside changes', async () => {
    const server = await serve();
    const targets = await outside(server.sentinel);
    const before = await snapshot(server.sentinel);
    const client = await connect(server.port);
    // Where each planted link leads: the kinds of pass l and a relative and a chained way to them.
    const ways: Record<string, (k: string) => Promise<void>> = {
      folderWithX: (k) => symlink(targets.folderWithX, join(server.realRoot, k)),
      emptyFolder: (k) => symlink(targets.emptyFolder, join(server.realRoot, k)),
      file: (k) => symlink(targets.file, join(server.realRoot, k)),
      nothing: (k) => symlink(targets.nothing, join(server.realRoot, k)),
      relativeFolderWithX: (k) => symlink('../sentinel/with-x', join(server.realRoot, k)),
      relativeNothing: (k) => symlink('../sentinel/nothing', join(server.realRoot, k)),
      chainFolderWithX: async (k) => {
        await symlink(targets.folderWithX, join(server.realRoot, `${k}-hop`));
        await symlink(`${k}-hop`, join(server.realRoot, k));
      },
      chainNothing: async (k) => {
        await symlink(targets.nothing, join(server.realRoot, `${k}-hop`));
        await symlink(`${k}-hop`, join(server.realRoot, k));
      },
    };
    let n = 0;
    for (const rest of ['x', 'sub/x']) {
      for (const [verb, make] of Object.entries(VERBS)) {
        const replies: Record<string, string> = {};
        for (const [kind, plant] of Object.entries(ways)) {
          // A fresh link each time: no folder check is remembered from an earlier probe.
          const k = `p${n}`;
          const src = `src-${n++}`;
          await writeFile(join(server.realRoot, src), 'src');
          await plant(k);
          replies[kind] = withoutName(await ask(client, make(k, rest, src)), k);
        }
        const first = Object.values(replies)[0]!;
        expect({ verb, rest, replies }).toEqual({ verb, rest, replies: Object.fromEntries(Object.keys(ways).map((kind) => [kind, first])) });
        expect({ verb, rest, first }).toEqual({ verb, rest, first: expect.stringMatching(/^(NOT FOUND \S|ERR [A-Z_]+ \S)/) });
      }
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    // Every RENAME source is still there, nothing was made beside the links.
    const inside = [...(await userSnapshot(server.realRoot))];
    expect(inside.filter(([, e]) => e.type === 'file').length).toBe(n);
    expect(inside.filter(([, e]) => e.type === 'dir')).toEqual([]);
  });

  test('held: under a swap after a cached check, every verb but the small UPLOAD answers the same whatever the link leads to; the parked folder and outside stay as they were', async () => {
    const server = await serve();
    const targets = await outside(server.sentinel);
    const d = join(server.realRoot, 'd');
    await mkdir(d);
    await writeFile(join(d, 'first'), 'first');
    await writeFile(join(server.realRoot, 'src'), 'src');
    const before = await snapshot(server.sentinel);
    const insideBefore = await userSnapshot(server.realRoot);
    const client = await connect(server.port);
    const kinds = { folderWithX: targets.folderWithX, emptyFolder: targets.emptyFolder, file: targets.file, nothing: targets.nothing };
    for (const [verb, make] of Object.entries(VERBS)) {
      // Finding 1.
      if (verb === 'uploadSmall') continue;
      const replies: Record<string, string> = {};
      for (const [kind, target] of Object.entries(kinds)) {
        await client.send('STAT\nd/first\n');
        expect(await client.readLine()).toMatch(/^OK stat file /);
        await rename(d, `${d}.parked`);
        await symlink(target, d);
        replies[kind] = await ask(client, make('d', 'x', 'src'));
        await unlink(d);
        await rename(`${d}.parked`, d);
      }
      expect({ verb, replies }).toEqual({ verb, replies: { folderWithX: replies.nothing, emptyFolder: replies.nothing, file: replies.nothing, nothing: replies.nothing } });
      expect({ verb, reply: replies.nothing }).toEqual({ verb, reply: expect.stringMatching(/^(NOT FOUND \S|ERR [A-Z_]+ \S|OK file recv \| ERR [A-Z_]+ \S)/) });
    }
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    expect(diffSnapshots(insideBefore, await userSnapshot(server.realRoot))).toEqual([]);
  });

  test("held: alice's links into bob's folder answer as links outside her root, whether the name exists in bob's folder or not; bob's files stay", async () => {
    const alice = await makeUser('alice', 'write', 'alice');
    const bob = await makeUser('bob', 'write', 'bob');
    const server = await serve([alice, bob]);
    await mkdir(join(server.realRoot, 'alice'));
    await mkdir(join(server.realRoot, 'bob', 'sub'), { recursive: true });
    await writeFile(join(server.realRoot, 'bob', 'x'), 'bobs x');
    await writeFile(join(server.realRoot, 'bob', 'sub', 'x'), 'bobs sub x');
    await writeFile(join(server.realRoot, 'alice', 'src'), 'src');
    const bobsBefore = await snapshot(join(server.realRoot, 'bob'));
    const client = await connect(server.port, alice.token);
    let n = 0;
    for (const rest of ['x', 'sub/x']) {
      for (const [verb, make] of Object.entries(VERBS)) {
        const replies: Record<string, string> = {};
        for (const [kind, target] of Object.entries({ bobsFolder: '../bob', bobsMissing: '../bob/nothing', bobsFile: '../bob/x' })) {
          const k = `q${n++}`;
          await symlink(target, join(server.realRoot, 'alice', k));
          replies[kind] = withoutName(await ask(client, make(k, rest, 'src')), k);
        }
        expect({ verb, rest, replies }).toEqual({ verb, rest, replies: { bobsFolder: replies.bobsMissing, bobsMissing: replies.bobsMissing, bobsFile: replies.bobsMissing } });
      }
    }
    expect(diffSnapshots(bobsBefore, await snapshot(join(server.realRoot, 'bob')))).toEqual([]);
    expect(await readFile(join(server.realRoot, 'alice', 'src'), 'utf8')).toBe('src');
  });

  test('regressions: links inside the root to folders inside work for every verb, missing names are NOT FOUND, missing folders list empty and are made by uploads, a dangling link inside is NAME_INVALID', async () => {
    const server = await serve();
    const real = join(server.realRoot, 'real');
    await mkdir(join(real, 'deep'), { recursive: true });
    await writeFile(join(real, 'have'), 'have');
    await writeFile(join(real, 'deep', 'have'), 'deep have');
    await symlink('real', join(server.realRoot, 'l'));
    await symlink(join(server.realRoot, 'l'), join(server.realRoot, 'chain'));
    await symlink('../real/deep', join(real, 'up'));
    await symlink('nowhere', join(server.realRoot, 'dangling'));
    const client = await connect(server.port);
    const medium = Buffer.alloc(100 * 1024, 5);
    const large = Buffer.alloc(MiB + 7, 6);
    for (const via of ['l', 'chain', 'real/up']) {
      const inReal = via === 'real/up' ? join(real, 'deep') : real;
      const tag = via.replace('/', '-');
      expect(await ask(client, upload(`${via}/small-${tag}`, 'small'))).toMatch(/^OK file recv \| OK file data recv 5 /);
      expect(await ask(client, upload(`${via}/medium-${tag}`, medium))).toMatch(/^OK file recv \| OK file data recv /);
      expect(await ask(client, upload(`${via}/large-${tag}`, large))).toMatch(/^OK file recv \| OK file data recv /);
      expect(await ask(client, upload(`${via}/add-${tag}`, 'add', 'ADDFILE'))).toMatch(/^OK file recv \| OK file data recv 3 /);
      expect(await ask(client, upload(`${via}/add-${tag}`, 'add', 'ADDFILE'))).toMatch(/^ERR EXISTS /);
      expect(await readFile(join(inReal, `small-${tag}`), 'utf8')).toBe('small');
      expect((await readFile(join(inReal, `medium-${tag}`))).equals(medium)).toBe(true);
      expect((await readFile(join(inReal, `large-${tag}`))).equals(large)).toBe(true);
      expect(await ask(client, download(`DOWNLOAD\n${via}/small-${tag}\n`))).toMatch(/^OK 5 /);
      expect(await ask(client, download(`DOWNLOAD FROM 2 ${sha256('sm')}\n${via}/small-${tag}\n`))).toMatch(/^OK 5 [0-9a-f]{64} from 2$/);
      expect(await ask(client, line(`STAT\n${via}/small-${tag}\n`))).toMatch(/^OK stat file 5 /);
      expect(await ask(client, line(`RENAME\n${via}/small-${tag}\n${via}/moved-${tag}\n`))).toMatch(/^OK/);
      expect(await lstat(join(inReal, `moved-${tag}`)).then((s) => s.isFile())).toBe(true);
      expect(await ask(client, line(`RENAME\nreal/have\n${via}/have-${tag}\n`))).toMatch(/^OK/);
      expect(await ask(client, line(`RENAME\n${via}/have-${tag}\nreal/have\n`))).toMatch(/^OK/);
      expect(await ask(client, line(`MKDIR\n${via}/made-${tag}\n`))).toMatch(/^OK/);
      expect((await lstat(join(inReal, `made-${tag}`))).isDirectory()).toBe(true);
      expect(await ask(client, line(`DELETE\n${via}/moved-${tag}\n`))).toMatch(/^OK/);
      expect(await lstat(join(inReal, `moved-${tag}`)).catch(() => undefined)).toBeUndefined();
      expect(await ask(client, line(`DELETE\n${via}/made-${tag}\n`))).toMatch(/^OK/);
      expect(await ask(client, download(`DOWNLOAD\n${via}/missing\n`))).toMatch(/^NOT FOUND /);
      expect(await ask(client, line(`STAT\n${via}/missing\n`))).toMatch(/^NOT FOUND /);
      expect(await ask(client, line(`DELETE\n${via}/missing\n`))).toMatch(/^NOT FOUND /);
      for (const request of [`LIST\n${via}\n`, `LIST PAGED\n${via}\n`, `LIST FOLDERS\n${via}\n`, `LIST PAGED FOLDERS SHALLOW\n${via}\n`]) {
        expect(await ask(client, listing(request))).toMatch(/^OK list \d+ [1-9]\d*( more)?$/);
      }
    }
    // Names that merely do not exist in real folders, and missing folders.
    expect(await ask(client, download('DOWNLOAD\nreal/nothing/x\n'))).toMatch(/^NOT FOUND /);
    expect(await ask(client, line('STAT\nreal/nothing/x\n'))).toMatch(/^NOT FOUND /);
    expect(await ask(client, listing('LIST\nreal/nothing\n'))).toBe('OK list 0 0');
    expect(await ask(client, listing('LIST\nno-such/deeper\n'))).toBe('OK list 0 0');
    expect(await ask(client, upload('fresh/a/b/c', 'made'))).toMatch(/^OK file recv \| OK file data recv 4 /);
    expect(await readFile(join(server.realRoot, 'fresh', 'a', 'b', 'c'), 'utf8')).toBe('made');
    expect(await ask(client, line('MKDIR\nl/new/deeper\n'))).toMatch(/^OK/);
    expect((await lstat(join(real, 'new', 'deeper'))).isDirectory()).toBe(true);
    // A dangling link inside: NAME_INVALID below it (acceptable), and nothing made at its end.
    for (const probe of [download('DOWNLOAD\ndangling/x\n'), line('STAT\ndangling/x\n'), listing('LIST\ndangling\n'), upload('dangling/x', 'x'), line('MKDIR\ndangling/x\n')]) {
      expect(await ask(client, probe)).toMatch(/^ERR NAME_INVALID /);
    }
    expect(await lstat(join(server.realRoot, 'nowhere')).catch(() => undefined)).toBeUndefined();
  });

  test('held: a folder renamed away after its check (mv d d.moved) is made again; every OK means the change is in the new d, every refusal changed nothing', async () => {
    const server = await serve();
    const d = join(server.realRoot, 'd');
    await mkdir(d);
    await writeFile(join(d, 'first'), 'first');
    const client = await connect(server.port);
    const cases: [string, Probe, string][] = [
      ['small', upload('d/small', 'small'), 'small'],
      ['medium', upload('d/medium', Buffer.alloc(100 * 1024, 3)), 'medium'],
      ['large', upload('d/large', Buffer.alloc(MiB + 1, 4)), 'large'],
      ['addfile', upload('d/add', 'add', 'ADDFILE'), 'add'],
      ['mkdir', line('MKDIR\nd/m\n'), 'm'],
    ];
    let i = 0;
    for (const [what, probe, made] of cases) {
      await client.send('STAT\nd/first\n');
      expect(await client.readLine()).toMatch(/^OK stat file /);
      const moved = `${d}.moved-${i++}`;
      await rename(d, moved);
      const answer = await ask(client, probe);
      const there = await lstat(join(d, made)).then(() => true, () => false);
      // (MKDIR answers NOT FOUND here: it does not make its vanished parent again as uploads do; nothing made.)
      expect({ what, answer, there }).toEqual({ what, answer: expect.stringMatching(/^(OK|NOT FOUND \S|ERR [A-Z_]+ \S|OK file recv \| (OK|ERR [A-Z_]+ \S))/), there: /^(OK file recv \| OK|OK)/.test(answer) && !/ERR/.test(answer) });
      // The moved folder holds only what it held.
      expect(await readdir(moved)).toEqual(['first']);
      // Put a real d back for the next case.
      await rename(d, `${moved}-new`).catch(() => undefined);
      await rename(moved, d);
    }
  });
});
