import { lstat, mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SECRET, SecureServer, diffSnapshots, makeUser, snapshot, stagingFiles, startSecureServer, type Entry } from './support/server';
import { Wire, sha256 } from './support/wire';

/**
 * Links planted inside the storage (by someone with shell access, an unpacked archive, another
 * program) must not let a client read or write outside. The layout:
 *
 *   <base>/sentinel/secret.txt, <base>/sentinel/dir/   outside the storage
 *   <base>/storage/                                   the root, with the links below planted in it
 */
describe('symlinks planted inside the root', () => {
  let server: SecureServer;
  let wire: Wire;
  let outsideBefore: Map<string, Entry>;
  const replies: string[] = [];

  const outside = () => snapshot(server.base, [server.root]);
  const upload = async (name: string, verb: 'UPLOAD' | 'ADDFILE' = 'UPLOAD') => {
    const result = await wire.upload(name, `planted via ${name}\n`, verb);
    replies.push(...result);
    return result;
  };
  const download = async (name: string) => {
    const result = await wire.download(name);
    replies.push(result.reply);
    if (result.data) replies.push(result.data.toString('latin1'));
    return result;
  };

  beforeAll(async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
    const { root, sentinel } = server;
    await mkdir(join(sentinel, 'dir'), { recursive: true });
    await writeFile(join(sentinel, 'dir', 'inner.txt'), SECRET);
    await symlink(sentinel, join(root, 'linkdir')); // absolute link to a folder outside
    await symlink('../sentinel', join(root, 'reldir')); // relative link to a folder outside
    await symlink(join(sentinel, 'secret.txt'), join(root, 'linkfile')); // link to a file outside
    await symlink(join(root, 'chain2'), join(root, 'chain1')); // chain: chain1 -> chain2 -> outside
    await symlink('chain3', join(root, 'chain2'));
    await symlink('../sentinel', join(root, 'chain3'));
    await mkdir(join(root, 'mid'));
    await symlink(sentinel, join(root, 'mid', 'hop')); // a link as a middle segment
    await symlink('loop', join(root, 'loop')); // loops
    await symlink('loopb', join(root, 'loopa'));
    await symlink('loopa', join(root, 'loopb'));
    await symlink(join(sentinel, 'not-yet'), join(root, 'dangling')); // dangling link to a file outside
    await symlink(join(sentinel, 'newdir'), join(root, 'danglingdir')); // dangling link to a folder outside
    await mkdir(join(root, 'real'));
    await symlink('real', join(root, 'inside')); // a link that stays inside the root
    wire = await Wire.open(server.port);
    outsideBefore = await outside();
  });

  afterEach(async () => {
    // Whatever the test did: nothing outside changed, the secret never crossed the wire, no staging left.
    expect(diffSnapshots(outsideBefore, await outside())).toEqual([]);
    for (const reply of replies.splice(0)) expect(reply).not.toContain('top secret');
    expect(await stagingFiles(server.root)).toEqual([]);
    if (wire.isEnded) wire = await Wire.open(server.port);
  });

  afterAll(async () => {
    wire.destroy();
    await server.close();
  });

  test.each([
    ['an absolute link to a folder outside', 'linkdir'],
    ['a relative link to a folder outside', 'reldir'],
    ['a chain of links ending outside', 'chain1'],
    ['the middle link of a chain', 'chain2'],
    ['a link as a middle segment', 'mid/hop'],
  ])('%s (%s/…): UPLOAD and DOWNLOAD through it are NAME_INVALID; ADDFILE is refused', async (_what, link) => {
    for (const name of [`${link}/secret.txt`, `${link}/new.txt`, `${link}/dir/inner.txt`, `${link}/dir/new.txt`]) {
      expect(await upload(name)).toEqual([expect.stringMatching(/^ERR NAME_INVALID /)]);
      expect((await download(name)).reply).toMatch(/^ERR NAME_INVALID /);
      expect(await upload(name, 'ADDFILE')).toEqual([expect.stringMatching(/^ERR (NAME_INVALID|EXISTS) /)]);
    }
    expect(await readFile(join(server.sentinel, 'secret.txt'), 'utf8')).toBe(SECRET);
    expect(await readFile(join(server.sentinel, 'dir', 'inner.txt'), 'utf8')).toBe(SECRET);
  });

  // Regression (fixed in 23a3f3a): beginWrite lstat'ed the unresolved target before the folder's
  // containment check, so ADDFILE answered EXISTS for a file outside and NAME_INVALID for a missing
  // one (and a >= 1 MiB UPLOAD NAME_CONFLICT for a folder outside): an oracle through planted links.
  test.each([
    ['an absolute link to a folder outside', 'linkdir'],
    ['a chain of links', 'chain1'],
    ['a link as a middle segment', 'mid/hop'],
  ])('%s (%s/…): refusals do not reveal what exists outside', async (_what, link) => {
    const codeOf = (reply: string) => reply.split(' ').slice(0, 2).join(' ');
    const existing = codeOf((await upload(`${link}/secret.txt`, 'ADDFILE')).pop()!);
    const missing = codeOf((await upload(`${link}/no-such-file.txt`, 'ADDFILE')).pop()!);
    expect(existing).toBe(missing);
    const big = Buffer.alloc(1024 * 1024, 0x61);
    const folder = codeOf((await wire.upload(`${link}/dir`, big)).pop()!);
    const noFolder = codeOf((await wire.upload(`${link}/no-such-dir`, big)).pop()!);
    expect(folder).toBe(noFolder);
    expect([existing, folder]).toEqual(['ERR NAME_INVALID', 'ERR NAME_INVALID']);
  });

  // Regression (fixed in 23a3f3a): `mkdir -p` ran before the realpath containment check and followed
  // planted links, so "linkdir/made-by-client/x" answered NAME_INVALID after creating the folders outside.
  test.each([
    ['an absolute link to a folder outside', 'linkdir'],
    ['a relative link to a folder outside', 'reldir'],
    ['a chain of links', 'chain1'],
    ['a link as a middle segment', 'mid/hop'],
  ])('%s (%s/…): an UPLOAD into a missing sub-folder creates no folder outside', async (_what, link) => {
    const escaped = join(server.sentinel, 'made-by-client');
    try {
      expect(await upload(`${link}/made-by-client/deeper/x.txt`)).toEqual([expect.stringMatching(/^ERR NAME_INVALID /)]);
      expect(await lstat(escaped).catch(() => undefined)).toBeUndefined();
    } finally {
      // Undo the escape so that the other tests are judged on their own effects.
      await rm(escaped, { recursive: true, force: true });
    }
  });

  test('a link as the final segment, to a file outside: DOWNLOAD is refused, and writing never touches the target', async () => {
    expect((await download('linkfile')).reply).toMatch(/^ERR NAME_INVALID /);
    // ADDFILE: the name exists (as a link): refused, the link stays.
    expect((await upload('linkfile', 'ADDFILE')).pop()).toMatch(/^ERR (EXISTS|NAME_INVALID) /);
    expect(await readlink(join(server.root, 'linkfile'))).toBe(join(server.sentinel, 'secret.txt'));
    // UPLOAD: refused, or (rename replaces the link itself) the link becomes a regular file inside the root.
    const replaced = await upload('linkfile');
    const stats = await lstat(join(server.root, 'linkfile'));
    if (replaced.pop()!.startsWith('OK')) {
      expect(stats.isFile()).toBe(true);
      expect(await readFile(join(server.root, 'linkfile'), 'utf8')).toBe('planted via linkfile\n');
    } else {
      expect(stats.isSymbolicLink()).toBe(true);
    }
    expect(await readFile(join(server.sentinel, 'secret.txt'), 'utf8')).toBe(SECRET);
  });

  test('a dangling link as the final segment: writing through it creates nothing outside', async () => {
    expect((await download('dangling')).reply).toMatch(/^ERR NAME_INVALID |^NOT FOUND /);
    expect((await upload('dangling', 'ADDFILE')).pop()).toMatch(/^ERR /);
    const result = (await upload('dangling')).pop()!;
    if (result.startsWith('OK')) expect((await lstat(join(server.root, 'dangling'))).isFile()).toBe(true);
    expect(await lstat(join(server.sentinel, 'not-yet')).catch(() => undefined)).toBeUndefined();
  });

  test('a dangling link to a folder outside: nothing is created behind it', async () => {
    // Refused (today as `NOT FOUND`, an odd reply to an UPLOAD; NAME_INVALID would match the other links).
    expect((await upload('danglingdir/x.txt')).pop()).toMatch(/^ERR |^NOT FOUND /);
    expect((await download('danglingdir/x.txt')).reply).toMatch(/^ERR |^NOT FOUND /);
    expect(await lstat(join(server.sentinel, 'newdir')).catch(() => undefined)).toBeUndefined();
  });

  test('a link to a folder, as the final segment, is not downloadable', async () => {
    for (const name of ['linkdir', 'reldir', 'chain1', 'mid/hop']) expect((await download(name)).reply).toMatch(/^ERR /);
  });

  test('link loops are refused without hurting the session', async () => {
    for (const name of ['loop/x', 'loopa/x', 'loopb/x']) {
      expect((await upload(name)).pop()).toMatch(/^ERR /);
      expect((await download(name)).reply).toMatch(/^ERR /);
    }
    // As a final segment a loop is just a link: not downloadable; an UPLOAD may replace the link itself.
    for (const name of ['loop', 'loopa']) {
      expect((await download(name)).reply).toMatch(/^ERR NAME_INVALID /);
      if ((await upload(name)).pop()!.startsWith('OK')) expect((await lstat(join(server.root, name))).isFile()).toBe(true);
    }
    expect(await wire.upload('after-loops.txt', 'fine')).toEqual(['OK file recv', `OK file data recv 4 ${sha256('fine')}`]);
  });

  test('a link that stays inside the root may be used, and what it writes lands inside', async () => {
    const reply = (await upload('inside/ok.txt')).pop()!;
    if (reply.startsWith('OK')) expect(await readFile(join(server.root, 'real', 'ok.txt'), 'utf8')).toBe('planted via inside/ok.txt\n');
    else expect(reply).toMatch(/^ERR NAME_INVALID /);
  });
});

describe('symlinks and per-user roots', () => {
  let server: SecureServer;
  let alice: string;
  let mallory: string;
  let outsideBefore: Map<string, Entry>;

  beforeAll(async () => {
    const a = await makeUser('alice', 'write', 'alice');
    const m = await makeUser('mallory', 'write', 'mallory');
    alice = a.token;
    mallory = m.token;
    server = await startSecureServer({ auth: { users: [a.entry, m.entry] } });
    const { root, sentinel } = server;
    await mkdir(join(root, 'bob'), { recursive: true });
    await writeFile(join(root, 'bob', 'diary.txt'), 'bob only\n');
    await mkdir(join(root, 'alice'), { recursive: true });
    // A link inside alice's root to bob's folder: inside the storage, outside alice's root.
    await symlink('../bob', join(root, 'alice', 'peek'));
    // mallory's whole root is a link out of the storage.
    await symlink(sentinel, join(root, 'mallory'));
    outsideBefore = await snapshot(server.base, [server.root]);
  });
  afterAll(() => server.close());

  test("a user whose root folder is a link out of the storage can neither read nor write there", async () => {
    const wire = await Wire.open(server.port);
    try {
      expect(await wire.auth(mallory)).toBe('OK auth mallory write');
      expect((await wire.download('secret.txt')).reply).toMatch(/^ERR NAME_INVALID /);
      expect(await wire.upload('x.txt', 'x')).toEqual([expect.stringMatching(/^ERR NAME_INVALID /)]);
      expect(diffSnapshots(outsideBefore, await snapshot(server.base, [server.root]))).toEqual([]);
    } finally {
      wire.destroy();
    }
  });

  test("a link inside alice's root to bob's folder does not let alice read bob's files", async () => {
    const wire = await Wire.open(server.port);
    try {
      expect(await wire.auth(alice)).toBe('OK auth alice write');
      const { reply, data } = await wire.download('peek/diary.txt');
      expect(data?.toString()).not.toBe('bob only\n');
      expect(reply).toMatch(/^ERR NAME_INVALID /);
    } finally {
      wire.destroy();
    }
  });
});
