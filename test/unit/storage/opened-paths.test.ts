import { closeSync, existsSync, lstatSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { asSeenFromTheCheck, assertOpenedWithin, inOpenedFolder, inServerFolder, inServerFolderSync, lookInOpenedFolder, openFolderForWalk, sizeReplaced } from '../../../src/storage/opened-paths';
import { outsideTheRoot } from '../../../src/storage/storage-errors';

/**
 * The looks and folder fsyncs of opened-paths.ts, on a real file system: each acts on the folder that
 * was checked (its real path) and never on what a link swapped in for it leads to.
 *
 *   <base>/root/d/         the checked folder: file (5 bytes), sub/ (a folder), link -> file
 *   <base>/outside/        file (11 bytes), only-outside (3 bytes)
 */
describe('opened-paths: looks and fsyncs inside the checked folder', () => {
  let base: string;
  let folder: string;
  let outside: string;

  beforeEach(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'rxfer-opened-')));
    folder = join(base, 'root', 'd');
    outside = join(base, 'outside');
    await mkdir(join(folder, 'sub'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(folder, 'file'), 'bytes');
    await symlink(join(folder, 'file'), join(folder, 'link'));
    await writeFile(join(outside, 'file'), 'outside!!!!');
    await writeFile(join(outside, 'only-outside'), 'abc');
  });
  afterEach(() => rm(base, { recursive: true, force: true }));

  /** The checked folder, now a link to `outside` (the real one parked beside it). */
  const swapFolder = async () => {
    await rename(folder, `${folder}.parked`);
    await symlink(outside, folder);
  };

  test.each([
    ['async', (f: string, t: string) => lookInOpenedFolder(f, t)],
  ])('%s look: what is there, not followed; undefined for nothing there, and for a folder removed since its check', async (_, look) => {
    expect((await look(folder, join(folder, 'file')))?.size).toBe(5);
    expect((await look(folder, join(folder, 'sub')))?.isDirectory()).toBe(true);
    expect((await look(folder, join(folder, 'link')))?.isSymbolicLink()).toBe(true);
    expect(await look(folder, join(folder, 'missing'))).toBeUndefined();
    // A name below a file: nothing there either (ENOTDIR).
    expect(await look(join(folder, 'file'), join(folder, 'file', 'x'))).toBeUndefined();
    await rm(folder, { recursive: true });
    expect(await look(folder, join(folder, 'file'))).toBeUndefined();
  });

  test.each([
    ['async', (f: string, t: string) => lookInOpenedFolder(f, t)],
  ])('%s look under a folder swapped for a link (or a grandparent swapped): ELOOP, for a name outside and a name nowhere alike', async (_, look) => {
    await swapFolder();
    for (const name of ['file', 'only-outside', 'missing']) await expect(Promise.resolve().then(() => look(folder, join(folder, name)))).rejects.toMatchObject({ code: 'ELOOP' });
    // The grandparent: <base>/root swapped for a link to a copy holding a `d` of its own.
    await rm(folder);
    await rename(`${folder}.parked`, folder);
    const decoy = join(base, 'decoy');
    await mkdir(join(decoy, 'd'), { recursive: true });
    await writeFile(join(decoy, 'd', 'file'), 'decoy file, 22 bytes!!');
    await rename(join(base, 'root'), join(base, 'root.parked'));
    await symlink(decoy, join(base, 'root'));
    await expect(Promise.resolve().then(() => look(folder, join(folder, 'file')))).rejects.toMatchObject({ code: 'ELOOP' });
  });

  test('inServerFolderSync: work gets a path that stays in the folder opened; its result or its error comes back', () => {
    expect(inServerFolderSync(folder, (inside) => readFileSync(join(inside, 'file'), 'utf8'))).toBe('bytes');
    writeFileSync(join(folder, 'made'), 'x');
    inServerFolderSync(folder, (inside) => renameSync(join(inside, 'made'), join(inside, 'moved')));
    expect(readFileSync(join(folder, 'moved'), 'utf8')).toBe('x');
    expect(() => inServerFolderSync(folder, () => { throw new Error('work failed'); })).toThrow('work failed');
  });

  test('inServerFolderSync under a folder swapped for a link after the work began: the work stays in the folder opened', () => {
    const made = inServerFolderSync(folder, (inside) => {
      renameSync(folder, `${folder}.parked`);
      symlinkSync(outside, folder);
      writeFileSync(join(inside, 'late'), 'in the parked folder');
      return 'done';
    });
    expect(made).toBe('done');
    expect(readFileSync(join(`${folder}.parked`, 'late'), 'utf8')).toBe('in the parked folder');
    expect(existsSync(join(outside, 'late'))).toBe(false);
  });

  test('inServerFolder: work that awaits stays in the folder opened, a link swapped in for it meanwhile', async () => {
    writeFileSync(join(folder, 'staged'), 'staged bytes');
    writeFileSync(join(outside, 'staged'), 'outside bytes');
    const moved = await inServerFolder(folder, async (inside) => {
      await rename(folder, `${folder}.parked`);
      await symlink(outside, folder);
      await rename(join(inside, 'staged'), join(inside, 'moved'));
      return 'moved';
    });
    expect(moved).toBe('moved');
    expect(readFileSync(join(`${folder}.parked`, 'moved'), 'utf8')).toBe('staged bytes');
    expect(readFileSync(join(outside, 'staged'), 'utf8')).toBe('outside bytes');
    // And once it is a link: refused before any work.
    await expect(inServerFolder(folder, async () => 'ran')).rejects.toMatchObject({ code: 'ELOOP' });
  });

  test('a name whose whole path the system could not take: ENAMETOOLONG, though its look through /proc/self/fd/<n>/ would fit', async () => {
    // Segments of 200 bytes and a short last one: only the whole path is too long (4,096 bytes or more).
    const segments = Array.from({ length: Math.ceil(4096 / 201) }, () => 's'.repeat(200));
    const target = join(folder, ...segments, 'x');
    await expect(lookInOpenedFolder(folder, target)).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    await expect(inOpenedFolder(folder, target, async () => 'ran')).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
  });

  test('every descriptor a look or an act opens is closed again, whether it finds something, nothing, or a link', async () => {
    const open = () => readdirSync('/proc/self/fd').length;
    const before = open();
    await lookInOpenedFolder(folder, join(folder, 'file'));
    inServerFolderSync(folder, (inside) => lstatSync(join(inside, 'file')));
    expect(() => inServerFolderSync(folder, (inside) => lstatSync(join(inside, 'missing')))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    await inOpenedFolder(folder, join(folder, 'x'), async (_, syncFolder) => syncFolder());
    await expect(inOpenedFolder(folder, join(folder, 'x'), async () => Promise.reject(new Error('work failed')))).rejects.toThrow('work failed');
    await swapFolder();
    expect(() => inServerFolderSync(folder, () => 'ran')).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    await expect(lookInOpenedFolder(folder, join(folder, 'file'))).rejects.toMatchObject({ code: 'ELOOP' });
    expect(open()).toBe(before);
  });

  test('assertOpenedWithin: a descriptor below the folder passes; one that leads outside is NAME_INVALID, in the words every such refusal uses', () => {
    const inside = openSync(join(folder, 'file'), 'r');
    const elsewhere = openSync(join(outside, 'file'), 'r');
    try {
      expect(() => assertOpenedWithin(inside, `${folder}/`, 'd/file' as RemoteName)).not.toThrow();
      expect(() => assertOpenedWithin(elsewhere, `${folder}/`, 'd/file' as RemoteName)).toThrow(expect.objectContaining({ code: 'NAME_INVALID', message: 'd/file resolves outside the storage root' }));
      expect(outsideTheRoot('d/file')).toMatchObject({ code: 'NAME_INVALID', message: 'd/file resolves outside the storage root' });
    } finally {
      closeSync(inside);
      closeSync(elsewhere);
    }
  });

  test('asSeenFromTheCheck: a read that did not find its name below a folder that is now a link is NAME_INVALID, whatever the read said; otherwise its error stands', async () => {
    const missing = new RxferError('NOT_FOUND', 'd/x does not exist');
    const conflict = new RxferError('NAME_CONFLICT', 'd/x is a folder, not a file');
    const link = new RxferError('NAME_INVALID', 'd/x is a symbolic link; rxfer does not follow links');
    const failed = new RxferError('STORAGE_FAILED', 'cannot read d/x: EIO');
    // The folder as checked: every error is the read's own.
    for (const err of [missing, conflict, link, failed]) expect(await asSeenFromTheCheck(err, folder, 'd/x' as RemoteName)).toBe(err);
    await swapFolder();
    for (const err of [missing, conflict, link]) expect(await asSeenFromTheCheck(err, folder, 'd/x' as RemoteName)).toMatchObject({ code: 'NAME_INVALID', message: 'd/x resolves outside the storage root' });
    // A storage failure is not about the name: it stands.
    expect(await asSeenFromTheCheck(failed, folder, 'd/x' as RemoteName)).toBe(failed);
    // A plain error (not a refusal) stands too.
    const plain = Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    expect(await asSeenFromTheCheck(plain, folder, 'd/x' as RemoteName)).toBe(plain);
  });

  test("openFolderForWalk: the folder, read and looked into through its descriptor, let go by close; undefined once it is a link, a file, gone, or below a link", async () => {
    const before = readdirSync('/proc/self/fd').length;
    const opened = (await openFolderForWalk(folder))!;
    expect(readdirSync(opened.through).sort()).toEqual(['file', 'link', 'sub']);
    expect(readFileSync(join(opened.through, 'file'), 'utf8')).toBe('bytes');
    opened.close();
    opened.close();
    expect(readdirSync('/proc/self/fd').length).toBe(before);
    expect(await openFolderForWalk(join(folder, 'file'))).toBeUndefined();
    expect(await openFolderForWalk(join(folder, 'missing'))).toBeUndefined();
    expect(await openFolderForWalk(join(folder, 'link'))).toBeUndefined();
    // A grandparent swapped for a link to a tree of the same shape: the folder opens, and is not the one checked.
    const decoy = join(base, 'decoy');
    await mkdir(join(decoy, 'd', 'sub'), { recursive: true });
    await rename(join(base, 'root'), join(base, 'root.parked'));
    await symlink(decoy, join(base, 'root'));
    expect(await openFolderForWalk(join(folder, 'sub'))).toBeUndefined();
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  test("sizeReplaced: a file's size; nothing, a link or a folder replace no user's bytes; under a swap it fails rather than size a file outside", async () => {
    expect(await sizeReplaced(folder, join(folder, 'file'))).toBe(5);
    expect(await sizeReplaced(folder, join(folder, 'missing'))).toBe(0);
    expect(await sizeReplaced(folder, join(folder, 'link'))).toBe(0);
    expect(await sizeReplaced(folder, join(folder, 'sub'))).toBe(0);
    await swapFolder();
    await expect(sizeReplaced(folder, join(folder, 'file'))).rejects.toMatchObject({ code: 'ELOOP' });
  });

  test("inOpenedFolder's fsync is of the folder the change was made in, even once it is renamed away and another made in its place", async () => {
    const seen = await inOpenedFolder(folder, join(folder, 'new'), async (inside, syncFolder) => {
      await writeFile(join(inside, 'new'), 'made through the descriptor');
      await rename(folder, `${folder}.parked`);
      await mkdir(folder);
      await syncFolder();
      return readlinkSync(inside);
    });
    expect(seen).toBe(`${folder}.parked`);
    expect(await readFile(join(`${folder}.parked`, 'new'), 'utf8')).toBe('made through the descriptor');
  });

  test.each([
    ['a folder outside', async () => outside],
    ['a file outside', async () => join(outside, 'file')],
    ['nothing', async () => join(outside, 'no-such-thing')],
  ])('a checked folder swapped for a link to %s: the same ELOOP from every opened-folder look and act', async (_, target) => {
    await rename(folder, `${folder}.parked`);
    await symlink(await target(), folder);
    const acts: (() => Promise<unknown>)[] = [
      () => inOpenedFolder(folder, join(folder, 'x'), async () => 'ran'),
      () => lookInOpenedFolder(folder, join(folder, 'file')),
      () => sizeReplaced(folder, join(folder, 'file')),
    ];
    for (const act of acts) await expect(Promise.resolve().then(act)).rejects.toMatchObject({ code: 'ELOOP', linkOnTheWay: true });
    // One of the server's own folders: the server's failure, not a link on a name's way (storage-errors.ts words it).
    const serverFolder = { code: 'ELOOP', linkOnTheWay: false, serverFolder: `.rxfer/${basename(folder)}` };
    await expect(Promise.resolve().then(() => inServerFolderSync(folder, () => 'ran'))).rejects.toMatchObject(serverFolder);
    await expect(inServerFolder(folder, async () => 'ran')).rejects.toMatchObject(serverFolder);
  });
});
