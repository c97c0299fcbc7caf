// fs-faults wraps fs/promises' unlink (looked up at call time): a kept upload that cannot be deleted.
import { failNext, failed, restoreFs } from '../../promises/support/fs-faults';
import { createHash } from 'node:crypto';
import fs = require('node:fs');
import { closeSync, writeSync } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hashPrefixModule from '../../../src/integrity/hash-prefix';
import { hashOf } from '../../../src/integrity/hash-algorithm';
import { RxferError } from '../../../src/errors/rxfer-error';
import { ClaimedPartial, PartialUploads } from '../../../src/storage/partial-uploads';

/**
 * PartialUploads on a real temp folder, in-process: each case runs in milliseconds, so mutation
 * testing can afford them per mutant (test/MUTATION.md). What is kept for RESUME, what is dropped
 * and how many bytes the quota is told about.
 */
describe('PartialUploads', () => {
  let root: string;
  let partials: PartialUploads;
  const folder = () => join(root, '.rxfer', 'partials');
  const idOf = (name: string) => createHash('sha256').update(name).digest('hex');
  const dataOf = (name: string) => join(folder(), idOf(name));
  const manifestOf = (name: string) => join(folder(), `${idOf(name)}.json`);
  const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
  const exists = (path: string) => stat(path).then(() => true, () => false);
  const claimed: ClaimedPartial[] = [];

  /**
   * A whole second: mtimeMs survives utimes exactly (a Date in ms does not carry the nanoseconds), so
   * a test can change a file and give it back the mtime a probe saw.
   */
  const SEEN_MTIME = new Date(1_700_000_000_000);

  /** Keeps `bytes` for `name` as an interrupted upload would (manifest and data). */
  const keep = async (name: string, bytes: Buffer | string, size = 1000) => {
    await writeFile(dataOf(name), bytes);
    await utimes(dataOf(name), SEEN_MTIME, SEEN_MTIME);
    await writeFile(manifestOf(name), JSON.stringify({ name, size, startedAt: new Date().toISOString() }));
  };

  /** Claims, remembers to close the fd at the end, and returns the claim. */
  const claim = async (...args: Parameters<PartialUploads['claim']>) => {
    const got = await partials.claim(...args);
    if (got) claimed.push(got);
    return got;
  };
  const done = (partial: ClaimedPartial) => {
    closeSync(partial.fd);
    claimed.splice(claimed.indexOf(partial), 1);
    partial.release();
  };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-partials-'));
    partials = new PartialUploads(root);
    await partials.init();
  });
  afterAll(() => restoreFs());
  afterEach(async () => {
    for (const partial of claimed.splice(0)) closeSync(partial.fd);
    jest.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  describe('init', () => {
    test('makes the folder and keeps what is there; drops data files that are second links or not files', async () => {
      await keep('kept.bin', 'abc');
      await writeFile(manifestOf('orphan-manifest'), '{}');
      await writeFile(join(root, 'committed.bin'), 'committed data');
      await keep('linked.bin', '');
      await rm(dataOf('linked.bin'));
      await link(join(root, 'committed.bin'), dataOf('linked.bin'));
      await keep('folder.bin', '');
      await rm(dataOf('folder.bin'));
      await mkdir(dataOf('folder.bin'));

      const fresh = new PartialUploads(root);
      await fresh.init();
      expect(fresh.mayHold('kept.bin')).toBe(true);
      expect(fresh.mayHold('orphan-manifest')).toBe(true);
      expect(fresh.mayHold('linked.bin')).toBe(false);
      expect(fresh.mayHold('never.bin')).toBe(false);
      // The second link and its manifest are gone; the committed file keeps its data.
      expect(await exists(dataOf('linked.bin'))).toBe(false);
      expect(await exists(manifestOf('linked.bin'))).toBe(false);
      expect(await readFile(join(root, 'committed.bin'), 'utf8')).toBe('committed data');
      expect(await exists(manifestOf('folder.bin'))).toBe(false);
      expect(fresh.mayHold('folder.bin')).toBe(false);
      expect(await exists(dataOf('kept.bin'))).toBe(true);
    });

    test('creates the partials folder where none was', async () => {
      const other = await mkdtemp(join(tmpdir(), 'rxfer-partials-empty-'));
      try {
        await new PartialUploads(other).init();
        expect(await readdir(join(other, '.rxfer', 'partials'))).toEqual([]);
      } finally {
        await rm(other, { recursive: true, force: true });
      }
    });
  });

  describe('probe', () => {
    test('reports the kept bytes and their digest, hashed from disk', async () => {
      await keep('a.bin', 'hello world');
      expect(await partials.probe('a.bin', 'sha256')).toEqual({ bytes: 11, digest: sha('hello world') });
      expect(await partials.probe('a.bin', 'blake3')).toEqual({ bytes: 11, digest: hashOf('blake3', Buffer.from('hello world')) });
    });

    test('nothing to resume: no file, an empty file, a second link, a folder, a symbolic link', async () => {
      expect(await partials.probe('none.bin', 'sha256')).toBeUndefined();
      await keep('empty.bin', '');
      expect(await partials.probe('empty.bin', 'sha256')).toBeUndefined();
      await writeFile(join(root, 'committed.bin'), 'data');
      await link(join(root, 'committed.bin'), dataOf('linked.bin'));
      expect(await partials.probe('linked.bin', 'sha256')).toBeUndefined();
      await mkdir(dataOf('dir.bin'));
      expect(await partials.probe('dir.bin', 'sha256')).toBeUndefined();
      await symlink(join(root, 'committed.bin'), dataOf('symlink.bin'));
      expect(await partials.probe('symlink.bin', 'sha256')).toBeUndefined();
    });

    test('a file cut shorter while it is hashed: nothing to resume', async () => {
      await keep('cut.bin', 'abcdef');
      jest.spyOn(hashPrefixModule, 'hashPrefix').mockResolvedValueOnce(undefined);
      expect(await partials.probe('cut.bin', 'sha256')).toBeUndefined();
    });

    test('closes what it opens', async () => {
      await keep('fd.bin', 'abcdef');
      await keep('empty.bin', '');
      const before = (await readdir('/proc/self/fd')).length;
      for (let i = 0; i < 5; i++) {
        await partials.probe('fd.bin', 'sha256');
        await partials.probe('empty.bin', 'sha256');
      }
      expect((await readdir('/proc/self/fd')).length).toBe(before);
    });

    test('refuses while the name is being uploaded, and answers again once released', async () => {
      await keep('busy.bin', 'abc');
      const partial = (await claim('busy.bin', 10, 'sha256'))!;
      await expect(partials.probe('busy.bin', 'sha256')).rejects.toMatchObject({ code: 'BUSY', message: expect.stringContaining('busy.bin is being uploaded on another connection') });
      done(partial);
      expect(await partials.probe('busy.bin', 'sha256')).toBeUndefined(); // the fresh claim emptied it
    });
  });

  describe('claim, fresh', () => {
    test('starts an empty data file and writes the manifest beside it', async () => {
      const partial = (await claim('dir/new.bin', 5000, 'sha256'))!;
      expect(partial.offset).toBe(0);
      expect(partial.path).toBe(dataOf('dir/new.bin'));
      expect(partial.hash.algorithm).toBe('sha256');
      expect(partial.hash.hex()).toBe(sha(''));
      expect(await partial.recorded).toBe(true);
      const manifest = JSON.parse(await readFile(manifestOf('dir/new.bin'), 'utf8'));
      expect(manifest).toMatchObject({ name: 'dir/new.bin', size: 5000 });
      expect(Date.parse(manifest.startedAt)).toBeGreaterThan(Date.now() - 60_000);
      expect((await stat(partial.path)).size).toBe(0);
      expect(partials.mayHold('dir/new.bin')).toBe(true);
      writeSync(partial.fd, 'abc');
      expect(await readFile(partial.path, 'utf8')).toBe('abc');
    });

    test('replaces a kept upload of the name with a new file and reports the bytes dropped', async () => {
      await keep('r.bin', 'old bytes');
      const fresh = new PartialUploads(root);
      await fresh.init();
      const dropped: number[] = [];
      const partial = (await fresh.claim('r.bin', 100, 'sha256', undefined, (bytes) => dropped.push(bytes)))!;
      claimed.push(partial);
      expect(dropped).toEqual([9]);
      expect((await stat(partial.path)).size).toBe(0);
    });

    test('a second link left by a crash is replaced, never written through', async () => {
      await writeFile(join(root, 'committed.bin'), 'committed data');
      await link(join(root, 'committed.bin'), dataOf('c.bin'));
      const partial = (await claim('c.bin', 100, 'sha256'))!;
      writeSync(partial.fd, 'new upload');
      expect(await readFile(join(root, 'committed.bin'), 'utf8')).toBe('committed data');
      expect(await readFile(partial.path, 'utf8')).toBe('new upload');
    });

    test('a kept manifest whose data file is gone: a fresh upload starts, nothing dropped', async () => {
      await writeFile(manifestOf('o.bin'), '{}');
      const fresh = new PartialUploads(root);
      await fresh.init();
      const dropped: number[] = [];
      claimed.push((await fresh.claim('o.bin', 100, 'sha256', undefined, (bytes) => dropped.push(bytes)))!);
      expect(dropped).toEqual([]);
    });

    test('a data file without a manifest (never counted against a quota) is replaced, and nothing reported dropped', async () => {
      await writeFile(dataOf('bare.bin'), 'old bytes');
      const fresh = new PartialUploads(root);
      await fresh.init();
      const dropped: number[] = [];
      claimed.push((await fresh.claim('bare.bin', 100, 'sha256', undefined, (bytes) => dropped.push(bytes)))!);
      expect(dropped).toEqual([]);
    });

    test('a kept manifest (a whole one) whose data file is gone: a fresh upload starts, nothing dropped', async () => {
      await writeFile(manifestOf('o.bin'), JSON.stringify({ name: 'o.bin', size: 100, startedAt: new Date().toISOString() }));
      const fresh = new PartialUploads(root);
      await fresh.init();
      const dropped: number[] = [];
      claimed.push((await fresh.claim('o.bin', 100, 'sha256', undefined, (bytes) => dropped.push(bytes)))!);
      expect(dropped).toEqual([]);
    });

    test('reports nothing dropped when nothing was kept', async () => {
      const dropped: number[] = [];
      claimed.push((await partials.claim('n.bin', 100, 'sha256', undefined, (bytes) => dropped.push(bytes)))!);
      expect(dropped).toEqual([]);
    });

    test('another connection uploading the name: a fresh upload stages elsewhere (undefined), a resume is refused', async () => {
      const first = (await claim('x.bin', 100, 'sha256'))!;
      expect(await partials.claim('x.bin', 100, 'sha256')).toBeUndefined();
      await expect(partials.claim('x.bin', 100, 'sha256', { offset: 0, digest: sha('') })).rejects.toMatchObject({ code: 'BUSY' });
      await expect(partials.discard('x.bin')).resolves.toBe(0);
      expect(await exists(first.path)).toBe(true);
      done(first);
      const second = await claim('x.bin', 100, 'sha256');
      expect(second).toBeDefined();
    });

    test('a data file that cannot be removed fails the claim, leaves no manifest, and frees the name', async () => {
      await mkdir(join(dataOf('blocked.bin'), 'inside'), { recursive: true });
      await expect(partials.claim('blocked.bin', 100, 'sha256')).rejects.toMatchObject({ code: 'EISDIR' });
      expect(await exists(manifestOf('blocked.bin'))).toBe(false);
      await rm(dataOf('blocked.bin'), { recursive: true });
      expect(await claim('blocked.bin', 100, 'sha256')).toBeDefined();
    });

    test('an open that fails for another reason (too many open files): that error, no manifest left, the old bytes reported gone', async () => {
      await keep('full.bin', 'old!!');
      const fresh = new PartialUploads(root);
      await fresh.init();
      // The storage's own descriptor table full at that moment: EMFILE, once (fs looked up at call time).
      const realOpen = fs.openSync;
      let failures = 0;
      jest.spyOn(fs, 'openSync').mockImplementation((...args: Parameters<typeof fs.openSync>) => {
        if (String(args[0]).endsWith(`/${idOf('full.bin')}`) && failures++ === 0) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
        return realOpen(...args);
      });
      const dropped: number[] = [];
      await expect(fresh.claim('full.bin', 100, 'sha256', undefined, (bytes) => dropped.push(bytes))).rejects.toMatchObject({ code: 'EMFILE' });
      jest.restoreAllMocks();
      expect(failures).toBe(1);
      // The old file was removed all the same (a new one is never the old truncated), and the ledger is told.
      expect(await exists(dataOf('full.bin'))).toBe(false);
      expect(await exists(manifestOf('full.bin'))).toBe(false);
      expect(dropped).toEqual([5]);
      const again = (await fresh.claim('full.bin', 100, 'sha256'))!;
      claimed.push(again);
      expect(again).toBeDefined();
    });

    test('an open that fails with nothing in the way: its own error, not the clean-up unlink\'s ENOENT', async () => {
      const realOpen = fs.openSync;
      jest.spyOn(fs, 'openSync').mockImplementation((...args: Parameters<typeof fs.openSync>) => {
        if (String(args[0]).endsWith(`/${idOf('none.bin')}`)) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return realOpen(...args);
      });
      await expect(partials.claim('none.bin', 100, 'sha256')).rejects.toMatchObject({ code: 'ENOSPC' });
      jest.restoreAllMocks();
      expect(await readdir(folder())).toEqual([]);
    });

    test('the kept uploads\' folder swapped for a link since the start: refused, nothing left at the link\'s end, no descriptor left open', async () => {
      const elsewhere = join(root, 'elsewhere');
      await mkdir(elsewhere);
      await rm(folder(), { recursive: true });
      await symlink(elsewhere, folder());
      await expect(partials.claim('swapped.bin', 100, 'sha256')).rejects.toMatchObject({ code: 'ELOOP' });
      // The data file opened through the link is removed again, and so is the manifest written through it.
      expect(await readdir(elsewhere)).toEqual([]);
      const open = await readdir('/proc/self/fd');
      const leading = await Promise.all(open.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
      expect(leading.filter((path) => path.startsWith(elsewhere))).toEqual([]);
    });

    test('the kept uploads\' folder swapped for a link to a folder holding a file of the kept name: probe, discard and expire neither hash nor delete it', async () => {
      await keep('x.bin', 'kept bytes');
      const fresh = new PartialUploads(root);
      await fresh.init();
      // The victim: a file outside the root under the very name of the kept upload, with a manifest.
      const elsewhere = join(root, 'elsewhere');
      await mkdir(elsewhere);
      await writeFile(join(elsewhere, idOf('x.bin')), 'not the server\'s');
      await writeFile(join(elsewhere, `${idOf('x.bin')}.json`), JSON.stringify({ name: 'x.bin', size: 1000, startedAt: new Date(0).toISOString() }));
      await rename(folder(), `${folder()}.parked`);
      await symlink(elsewhere, folder());
      // Not "nothing kept" (it is, in the folder parked): the server's folder is named.
      await expect(fresh.probe('x.bin', 'sha256')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: "cannot look for the kept upload of x.bin: the server's own folder .rxfer/partials cannot be used (it, or a folder above it, is a symbolic link now: ELOOP)" });
      await expect(fresh.discard('x.bin')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringContaining("the server's own folder .rxfer/") });
      await fresh.expire(0);
      expect(await readFile(join(elsewhere, idOf('x.bin')), 'utf8')).toBe('not the server\'s');
      // And the kept upload itself, in the folder parked, is untouched.
      expect(await readFile(join(`${folder()}.parked`, idOf('x.bin')), 'utf8')).toBe('kept bytes');
    });

    test('a claim leaves no descriptor open on the manifest (only the data file\'s, which the upload owns)', async () => {
      const partial = (await claim('fd.bin', 100, 'sha256'))!;
      const open = await readdir('/proc/self/fd');
      const leading = await Promise.all(open.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
      expect(leading.filter((path) => path === manifestOf('fd.bin'))).toEqual([]);
      expect(leading.filter((path) => path === dataOf('fd.bin'))).toHaveLength(1);
      done(partial);
    });

    test('a resume with the kept uploads\' folder swapped for a link to a folder holding that id with the digest given: STORAGE_FAILED naming the folder, nothing written outside', async () => {
      const elsewhere = join(root, 'elsewhere');
      await mkdir(elsewhere);
      await writeFile(join(elsewhere, idOf('r.bin')), 'outside prefix');
      await writeFile(join(elsewhere, `${idOf('r.bin')}.json`), JSON.stringify({ name: 'r.bin', size: 100, startedAt: new Date(0).toISOString() }));
      await rm(folder(), { recursive: true });
      await symlink(elsewhere, folder());
      await expect(partials.claim('r.bin', 100, 'sha256', { offset: 14, digest: sha('outside prefix') })).rejects.toMatchObject({
        code: 'STORAGE_FAILED',
        message: "cannot resume r.bin: the server's own folder .rxfer/partials cannot be used (it, or a folder above it, is a symbolic link now: ELOOP)",
      });
      expect(await readFile(join(elsewhere, idOf('r.bin')), 'utf8')).toBe('outside prefix');
    });

    test('a manifest that cannot be written: recorded says so', async () => {
      await mkdir(manifestOf('m.bin'));
      const partial = (await claim('m.bin', 100, 'sha256'))!;
      expect(await partial.recorded).toBe(false);
    });

    test('forget drops the manifest after it was written; the name no longer may hold anything', async () => {
      const partial = (await claim('f.bin', 100, 'sha256'))!;
      await partial.forget();
      expect(await exists(manifestOf('f.bin'))).toBe(false);
      expect(partials.mayHold('f.bin')).toBe(false);
    });
  });

  describe('claim, resume', () => {
    const resumeAt = (bytes: string) => ({ offset: bytes.length, digest: sha(bytes) });

    test('reopens the kept data at the offset with the hash state of the prefix; nothing dropped', async () => {
      await keep('k.bin', 'abcdef');
      const dropped: number[] = [];
      const partial = (await claim('k.bin', 100, 'sha256', resumeAt('abcdef'), (bytes) => dropped.push(bytes)))!;
      expect(partial.offset).toBe(6);
      expect(partial.hash.update(Buffer.from('gh')).hex()).toBe(sha('abcdefgh'));
      expect(await partial.recorded).toBe(true);
      expect(dropped).toEqual([]);
      writeSync(partial.fd, 'gh', 6);
      expect(await readFile(partial.path, 'utf8')).toBe('abcdefgh');
      // The manifest of the first upload stays.
      expect(await exists(manifestOf('k.bin'))).toBe(true);
    });

    test('cuts what is kept beyond the offset and reports the bytes cut', async () => {
      await keep('cut.bin', 'abcdefghij');
      const dropped: number[] = [];
      const partial = (await claim('cut.bin', 100, 'sha256', resumeAt('abcd'), (bytes) => dropped.push(bytes)))!;
      expect((await stat(partial.path)).size).toBe(4);
      expect(dropped).toEqual([6]);
    });

    test('nothing kept: RESUME_MISMATCH with the offset', async () => {
      const failure = partials.claim('none.bin', 100, 'sha256', resumeAt('abc'));
      await expect(failure).rejects.toMatchObject({
        code: 'RESUME_MISMATCH',
        message: 'cannot resume none.bin at 3 bytes: no interrupted upload of it is kept; upload it from the start',
        detail: { offset: 3 },
      });
      // The name is free again.
      expect(await claim('none.bin', 100, 'sha256')).toBeDefined();
    });

    test('too few bytes kept: RESUME_MISMATCH, and the useless kept bytes are deleted and reported', async () => {
      await keep('short.bin', 'abc');
      const dropped: number[] = [];
      await expect(partials.claim('short.bin', 100, 'sha256', resumeAt('abcdef'), (bytes) => dropped.push(bytes))).rejects.toMatchObject({
        code: 'RESUME_MISMATCH',
        message: expect.stringContaining('only 3 bytes are kept'),
      });
      expect(dropped).toEqual([3]);
      expect(await exists(dataOf('short.bin'))).toBe(false);
      expect(await exists(manifestOf('short.bin'))).toBe(false);
      expect(partials.mayHold('short.bin')).toBe(false);
      expect(await claim('short.bin', 100, 'sha256')).toBeDefined();
    });

    test('RESUME of a data file without a manifest (a second link a create-only commit left): RESUME_MISMATCH, it goes, nothing reported dropped', async () => {
      await writeFile(join(root, 'committed.bin'), 'abcdef');
      await link(join(root, 'committed.bin'), dataOf('linked.bin'));
      const dropped: number[] = [];
      await expect(partials.claim('linked.bin', 100, 'sha256', resumeAt('abc'), (bytes) => dropped.push(bytes))).rejects.toMatchObject({ code: 'RESUME_MISMATCH' });
      expect(dropped).toEqual([]);
      expect(await exists(dataOf('linked.bin'))).toBe(false);
      expect(await readFile(join(root, 'committed.bin'), 'utf8')).toBe('abcdef');
    });

    test('a digest that does not match: RESUME_MISMATCH, kept bytes deleted', async () => {
      await keep('wrong.bin', 'abcdef');
      const dropped: number[] = [];
      await expect(partials.claim('wrong.bin', 100, 'sha256', { offset: 3, digest: sha('xyz') }, (bytes) => dropped.push(bytes))).rejects.toMatchObject({
        code: 'RESUME_MISMATCH',
        message: expect.stringContaining('the kept bytes do not match the digest given for them'),
      });
      expect(dropped).toEqual([6]);
      expect(await exists(dataOf('wrong.bin'))).toBe(false);
    });

    test('a digest that does not match and kept bytes that cannot be deleted (an I/O error): RESUME_MISMATCH, the bytes stay and are not reported freed', async () => {
      await keep('stuck.bin', 'abcdef');
      const dropped: number[] = [];
      failNext('unlink', (path) => path === dataOf('stuck.bin'));
      await expect(partials.claim('stuck.bin', 100, 'sha256', { offset: 3, digest: sha('xyz') }, (bytes) => dropped.push(bytes))).rejects.toMatchObject({ code: 'RESUME_MISMATCH' });
      expect(failed.map((entry) => entry.path)).toContain(dataOf('stuck.bin'));
      expect(dropped).toEqual([]);
      expect(await readFile(dataOf('stuck.bin'), 'utf8')).toBe('abcdef');
    });

    test('a resume failing for another reason (a read error) keeps the kept bytes for a later try', async () => {
      await keep('io.bin', 'abcdef');
      const dropped: number[] = [];
      const failures = [Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }), new RxferError('STORAGE_FAILED', 'cannot read')];
      for (const failure of failures) {
        jest.spyOn(hashPrefixModule, 'hashPrefix').mockRejectedValueOnce(failure);
        await expect(partials.claim('io.bin', 100, 'sha256', resumeAt('abc'), (bytes) => dropped.push(bytes))).rejects.toBe(failure);
        expect(await readFile(dataOf('io.bin'), 'utf8')).toBe('abcdef');
        expect(await exists(manifestOf('io.bin'))).toBe(true);
      }
      expect(dropped).toEqual([]);
    });

    test('a kept file that is a second link to a committed file: RESUME_MISMATCH, the committed file untouched', async () => {
      await writeFile(join(root, 'committed.bin'), 'abcdef');
      await link(join(root, 'committed.bin'), dataOf('l.bin'));
      await expect(partials.claim('l.bin', 100, 'sha256', resumeAt('abc'))).rejects.toMatchObject({
        code: 'RESUME_MISMATCH',
        message: expect.stringContaining('linked to a committed file'),
      });
      expect(await readFile(join(root, 'committed.bin'), 'utf8')).toBe('abcdef');
      expect(await exists(dataOf('l.bin'))).toBe(false);
    });
  });

  describe('the probe’s hash handed to the resume that follows', () => {
    const sha256Prefixes = () => jest.spyOn(hashPrefixModule, 'hashPrefix');

    test('a resume right where the probe ended reuses its hash: the prefix is not read twice', async () => {
      await keep('p.bin', 'abcdef');
      const probed = (await partials.probe('p.bin', 'sha256'))!;
      const hashing = sha256Prefixes();
      const partial = (await claim('p.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest }))!;
      expect(hashing).not.toHaveBeenCalled();
      expect(partial.hash.hex()).toBe(sha('abcdef'));
    });

    test('handed over once: a second resume hashes again', async () => {
      await keep('p.bin', 'abcdef');
      const probed = (await partials.probe('p.bin', 'sha256'))!;
      done((await claim('p.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest }))!);
      const hashing = sha256Prefixes();
      done((await claim('p.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest }))!);
      expect(hashing).toHaveBeenCalledTimes(1);
    });

    /** Probes `original`, then `change`s the data file, then resumes with the probe's answer. */
    const changedAfterProbe = async (original: string, change: () => Promise<unknown>, algorithm: 'sha256' | 'blake3' = 'sha256') => {
      await keep('t.bin', original);
      const probed = (await partials.probe('t.bin', algorithm))!;
      await change();
      return { probed };
    };

    test('control: a change that keeps size, mtime and inode is not seen (so the cases below show the check at work)', async () => {
      const { probed } = await changedAfterProbe('abcdef', async () => {
        await writeFile(dataOf('t.bin'), 'ABCDEF');
        await utimes(dataOf('t.bin'), SEEN_MTIME, SEEN_MTIME);
      });
      expect((await claim('t.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest }))!.hash.hex()).toBe(sha('abcdef'));
    });

    test('a file rewritten since the probe (other mtime) is hashed again: the old digest does not resume it', async () => {
      const { probed } = await changedAfterProbe('abcdef', async () => {
        await writeFile(dataOf('t.bin'), 'ABCDEF');
        await utimes(dataOf('t.bin'), new Date(), new Date(Date.now() + 10_000));
      });
      await expect(partials.claim('t.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest })).rejects.toMatchObject({ code: 'RESUME_MISMATCH' });
    });

    test('a file replaced since the probe (other inode, same size and mtime) is hashed again', async () => {
      const { probed } = await changedAfterProbe('abcdef', async () => {
        const other = join(root, 'other');
        await writeFile(other, 'ABCDEF');
        await utimes(other, SEEN_MTIME, SEEN_MTIME);
        await rm(dataOf('t.bin'));
        await link(other, dataOf('t.bin'));
        await rm(other);
      });
      await expect(partials.claim('t.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest })).rejects.toMatchObject({ code: 'RESUME_MISMATCH' });
    });

    test('a file grown since the probe, same mtime: the resume at the new size hashes it', async () => {
      await changedAfterProbe('abc', async () => {
        await writeFile(dataOf('t.bin'), 'abcdef');
        await utimes(dataOf('t.bin'), SEEN_MTIME, SEEN_MTIME);
      });
      const partial = (await claim('t.bin', 100, 'sha256', { offset: 6, digest: sha('abcdef') }))!;
      expect(partial.hash.hex()).toBe(sha('abcdef'));
    });

    test('a resume before the end of what is kept hashes the prefix now (the data may have changed since)', async () => {
      const { probed } = await changedAfterProbe('abc', async () => {
        await writeFile(dataOf('t.bin'), 'XYZdef');
        await utimes(dataOf('t.bin'), SEEN_MTIME, SEEN_MTIME);
      });
      await expect(partials.claim('t.bin', 100, 'sha256', { offset: 3, digest: probed.digest })).rejects.toMatchObject({ code: 'RESUME_MISMATCH' });
    });

    test('a probe in another algorithm is not reused', async () => {
      await changedAfterProbe('abcdef', async () => undefined, 'blake3');
      const partial = (await claim('t.bin', 100, 'sha256', { offset: 6, digest: sha('abcdef') }))!;
      expect(partial.hash.hex()).toBe(sha('abcdef'));
    });

    test('at most 16 probes are remembered, the least recent forgotten first', async () => {
      const names = Array.from({ length: 17 }, (_, i) => `n${i}.bin`);
      for (const name of names) await keep(name, name);
      for (const name of names.slice(0, 16)) await partials.probe(name, 'sha256');
      await partials.probe('n0.bin', 'sha256'); // n0 is the most recent now: n1 goes first
      await partials.probe('n16.bin', 'sha256');
      const hashing = sha256Prefixes();
      done((await claim('n0.bin', 100, 'sha256', { offset: 6, digest: sha('n0.bin') }))!);
      expect(hashing).toHaveBeenCalledTimes(0);
      done((await claim('n2.bin', 100, 'sha256', { offset: 6, digest: sha('n2.bin') }))!);
      expect(hashing).toHaveBeenCalledTimes(0);
      done((await claim('n1.bin', 100, 'sha256', { offset: 6, digest: sha('n1.bin') }))!);
      expect(hashing).toHaveBeenCalledTimes(1);
    });

    test('a fresh upload of the name forgets the probe', async () => {
      await keep('f.bin', 'abcdef');
      const probed = (await partials.probe('f.bin', 'sha256'))!;
      const partial = (await claim('f.bin', 100, 'sha256'))!;
      writeSync(partial.fd, 'ABCDEF');
      done(partial);
      const hashing = sha256Prefixes();
      await expect(partials.claim('f.bin', 100, 'sha256', { offset: probed.bytes, digest: probed.digest })).rejects.toMatchObject({ code: 'RESUME_MISMATCH' });
      expect(hashing).toHaveBeenCalledTimes(1);
    });

    test('a discarded upload’s probe is forgotten', async () => {
      await keep('d.bin', 'abcdef');
      await partials.probe('d.bin', 'sha256');
      await partials.discard('d.bin');
      await keep('d.bin', 'abcdef');
      const hashing = sha256Prefixes();
      done((await claim('d.bin', 100, 'sha256', { offset: 6, digest: sha('abcdef') }))!);
      expect(hashing).toHaveBeenCalledTimes(1);
    });
  });

  describe('discard', () => {
    test('deletes the kept data and manifest and returns its bytes', async () => {
      await keep('d.bin', 'twelve bytes');
      expect(await partials.discard('d.bin')).toBe(12);
      expect(await exists(dataOf('d.bin'))).toBe(false);
      expect(await exists(manifestOf('d.bin'))).toBe(false);
      expect(partials.mayHold('d.bin')).toBe(false);
    });

    test('data without a manifest (a second link a commit left, a manifest never written) goes, and frees nothing counted', async () => {
      await writeFile(dataOf('bare.bin'), 'twelve bytes');
      expect(await partials.discard('bare.bin')).toBe(0);
      expect(await exists(dataOf('bare.bin'))).toBe(false);
      await writeFile(dataOf('torn.bin'), 'twelve bytes');
      await writeFile(manifestOf('torn.bin'), '{"name":');
      expect(await partials.discard('torn.bin')).toBe(0);
    });

    test('data that cannot be deleted: the error says so, and the upload stays kept (data and manifest)', async () => {
      await keep('stuck.bin', 'twelve bytes');
      failed.length = 0;
      failNext('unlink', (path) => path === dataOf('stuck.bin'));
      await expect(partials.discard('stuck.bin')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot delete the kept upload of stuck.bin: EIO (i/o error)' });
      expect(failed.map((fault) => fault.call)).toEqual(['unlink']);
      expect(await exists(dataOf('stuck.bin'))).toBe(true);
      expect(await exists(manifestOf('stuck.bin'))).toBe(true);
      expect(await partials.discard('stuck.bin')).toBe(12);
    });

    test('data gone between its lstat and its unlink (ENOENT): gone all the same, its bytes freed', async () => {
      await keep('raced.bin', 'twelve bytes');
      failNext('unlink', (path) => path === dataOf('raced.bin'), 'ENOENT');
      expect(await partials.discard('raced.bin')).toBe(12);
      expect(await exists(manifestOf('raced.bin'))).toBe(false);
    });

    test('the look for kept data that fails (an I/O error, not "nothing there"): STORAGE_FAILED saying so, never 0', async () => {
      await keep('unseen.bin', 'twelve bytes');
      const lstat = fs.lstatSync;
      const look = jest.spyOn(fs, 'lstatSync').mockImplementation(((path: fs.PathLike, options?: fs.StatSyncOptions) => {
        if (String(path).endsWith(idOf('unseen.bin'))) throw Object.assign(new Error('EIO: i/o error, lstat'), { code: 'EIO' });
        return lstat(path, options);
      }) as typeof fs.lstatSync);
      try {
        await expect(partials.discard('unseen.bin')).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot delete the kept upload of unseen.bin: EIO (i/o error)' });
        expect(look).toHaveBeenCalled();
      } finally {
        look.mockRestore();
      }
      // Nothing was deleted: the kept upload is still there, and the next DELETE frees it.
      expect(await exists(dataOf('unseen.bin'))).toBe(true);
      expect(await partials.discard('unseen.bin')).toBe(12);
    });

    test('nothing kept: 0, and a manifest without data stays', async () => {
      await writeFile(manifestOf('m.bin'), '{}');
      expect(await partials.discard('m.bin')).toBe(0);
      expect(await exists(manifestOf('m.bin'))).toBe(true);
    });
  });

  describe('expire', () => {
    const age = async (name: string, ms: number, now: number) => {
      const when = new Date(now - ms);
      await utimes(dataOf(name), when, when);
      await utimes(manifestOf(name), when, when);
    };

    test('a manifest whose data file is gone (an orphan) goes once it is old, and frees nothing', async () => {
      const now = Date.now();
      await writeFile(manifestOf('orphan.bin'), JSON.stringify({ name: 'orphan.bin', size: 1000, startedAt: new Date(0).toISOString() }));
      const when = new Date(now - 120_000);
      await utimes(manifestOf('orphan.bin'), when, when);
      expect(await partials.expire(60_000, now)).toBe(0);
      expect(await exists(manifestOf('orphan.bin'))).toBe(false);
    });

    test('deletes uploads with no write for maxAge (exactly maxAge too), keeps younger ones, returns the bytes freed', async () => {
      const now = Date.now();
      await keep('old.bin', 'x'.repeat(10));
      await keep('older.bin', 'x'.repeat(20));
      await keep('young.bin', 'x'.repeat(40));
      await age('old.bin', 60_000, now);
      await age('older.bin', 120_000, now);
      await age('young.bin', 59_000, now);
      expect(await partials.expire(60_000, now)).toBe(30);
      expect(await exists(dataOf('old.bin'))).toBe(false);
      expect(await exists(manifestOf('old.bin'))).toBe(false);
      expect(await exists(dataOf('older.bin'))).toBe(false);
      expect(await exists(dataOf('young.bin'))).toBe(true);
      expect(await exists(manifestOf('young.bin'))).toBe(true);
    });

    test('the later of data and manifest counts; an orphan manifest goes too; an upload in progress stays', async () => {
      const now = Date.now();
      await keep('recent-data.bin', 'abc');
      await age('recent-data.bin', 120_000, now);
      await utimes(dataOf('recent-data.bin'), new Date(now), new Date(now));
      await keep('recent-manifest.bin', 'abc');
      await age('recent-manifest.bin', 120_000, now);
      await utimes(manifestOf('recent-manifest.bin'), new Date(now), new Date(now));
      await writeFile(manifestOf('orphan.bin'), '{}');
      await utimes(manifestOf('orphan.bin'), new Date(now - 120_000), new Date(now - 120_000));
      const writing = (await claim('writing.bin', 100, 'sha256'))!;
      await writing.recorded;
      await utimes(dataOf('writing.bin'), new Date(now - 120_000), new Date(now - 120_000));
      await utimes(manifestOf('writing.bin'), new Date(now - 120_000), new Date(now - 120_000));

      expect(await partials.expire(60_000, now)).toBe(0);
      expect(await exists(dataOf('recent-data.bin'))).toBe(true);
      expect(await exists(dataOf('recent-manifest.bin'))).toBe(true);
      expect(await exists(manifestOf('orphan.bin'))).toBe(false);
      expect(await exists(dataOf('writing.bin'))).toBe(true);
    });

    test('an old data file without a manifest goes and frees nothing counted; one that cannot be deleted stays, counted, for the next sweep', async () => {
      const now = Date.now();
      await writeFile(dataOf('bare.bin'), 'x'.repeat(10));
      await utimes(dataOf('bare.bin'), new Date(now - 120_000), new Date(now - 120_000));
      await keep('stuck.bin', 'x'.repeat(20));
      await age('stuck.bin', 120_000, now);
      failNext('unlink', (path) => path === dataOf('stuck.bin'));
      expect(await partials.expire(60_000, now)).toBe(0);
      expect(await exists(dataOf('bare.bin'))).toBe(false);
      expect(await exists(dataOf('stuck.bin'))).toBe(true);
      expect(await exists(manifestOf('stuck.bin'))).toBe(true);
      expect(await partials.expire(60_000, now)).toBe(20);
    });

    test('an old manifest (a whole one) without its data file goes, freeing nothing', async () => {
      const now = Date.now();
      await writeFile(manifestOf('lone.bin'), JSON.stringify({ name: 'lone.bin', size: 100, startedAt: new Date().toISOString() }));
      await utimes(manifestOf('lone.bin'), new Date(now - 120_000), new Date(now - 120_000));
      expect(await partials.expire(60_000, now)).toBe(0);
      expect(await exists(manifestOf('lone.bin'))).toBe(false);
    });

    // The case above ages by utimes of `now - 60 s`, which lands a fraction of a millisecond off;
    // here the last write is a whole second (exact in mtimeMs), so the age is exactly maxAge.
    test('an upload idle for exactly maxAge expires', async () => {
      await keep('edge.bin', 'x'.repeat(6));
      await utimes(manifestOf('edge.bin'), SEEN_MTIME, SEEN_MTIME);
      expect((await stat(dataOf('edge.bin'))).mtimeMs).toBe(SEEN_MTIME.getTime());
      expect(await partials.expire(60_000, SEEN_MTIME.getTime() + 59_999)).toBe(0);
      expect(await exists(dataOf('edge.bin'))).toBe(true);
      expect(await partials.expire(60_000, SEEN_MTIME.getTime() + 60_000)).toBe(6);
      expect(await exists(dataOf('edge.bin'))).toBe(false);
    });

    test('a data file without its manifest expires by its own mtime (freeing nothing a quota counted: bytesUnder never did)', async () => {
      const now = Date.now();
      await writeFile(dataOf('lost-manifest.bin'), 'abcde');
      await utimes(dataOf('lost-manifest.bin'), new Date(now - 120_000), new Date(now - 120_000));
      expect(await partials.bytesUnder('')).toBe(0);
      expect(await partials.expire(60_000, now)).toBe(0);
      expect(await exists(dataOf('lost-manifest.bin'))).toBe(false);
    });

    test('by default measured against the clock now', async () => {
      await keep('a.bin', 'abcd');
      await age('a.bin', 120_000, Date.now());
      expect(await partials.expire(60_000)).toBe(4);
    });
  });

  describe('bytesUnder', () => {
    test('counts the kept bytes of names under a folder (not its namesakes), or all of them', async () => {
      await keep('a/x.bin', 'x'.repeat(3));
      await keep('a/b/y.bin', 'y'.repeat(5));
      await keep('ab/z.bin', 'z'.repeat(7));
      await keep('a', 'a'.repeat(11));
      await writeFile(dataOf('no-manifest.bin'), 'n'.repeat(13));
      await writeFile(manifestOf('no-data.bin'), JSON.stringify({ name: 'no-data.bin', size: 1, startedAt: '' }));
      expect(await partials.bytesUnder('a')).toBe(8);
      expect(await partials.bytesUnder('a/b')).toBe(5);
      expect(await partials.bytesUnder('')).toBe(26);
    });

    // A manifest is written without fsync: a crash can leave it empty or cut. Before the fix its
    // parse error escaped `.then(parse, () => undefined)` and every usage() of the root threw,
    // failing every upload of every user with a quota.
    test('a manifest cut by a crash, or without a name, is skipped, not fatal to every quota check', async () => {
      await keep('a/x.bin', 'x'.repeat(3));
      await writeFile(manifestOf('a/torn.bin'), '');
      await writeFile(dataOf('a/torn.bin'), 'b'.repeat(17));
      await writeFile(manifestOf('a/nameless.bin'), '{}');
      await writeFile(dataOf('a/nameless.bin'), 'n'.repeat(19));
      expect(await partials.bytesUnder('a')).toBe(3);
      expect(await partials.bytesUnder('')).toBe(3);
    });

    // The upload writing it holds its whole size reserved in the quota ledger: counted here too, a remeasure
    // during the upload would count it twice (the hostile pass of 2026-12-05).
    test('a kept upload being written again is left out until its writer lets go', async () => {
      await keep('a/x.bin', 'x'.repeat(3));
      await keep('a/resumed.bin', 'r'.repeat(5));
      const writing = (await claim('a/resumed.bin', 1000, 'sha256', { offset: 5, digest: sha('r'.repeat(5)) }))!;
      expect(await partials.bytesUnder('a')).toBe(3);
      writing.release();
      expect(await partials.bytesUnder('a')).toBe(8);
    });

    test('no partials folder: nothing', async () => {
      await rm(folder(), { recursive: true });
      expect(await partials.bytesUnder('')).toBe(0);
      expect(await partials.expire(0)).toBe(0);
    });
  });
});
