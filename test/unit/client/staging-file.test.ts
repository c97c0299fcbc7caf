import { disarm, failNext, failed, nextFsyncBy, openFds, restoreFs } from './support/client-fs-faults';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { closeSync, existsSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { WriteStream } from 'node:fs';
import { ResumeLock } from '../../../src/client/resume-lock';
import { StagingFile, assertStagedSize, isUnfinishedDownloadName, partialPathFor, refuseDirectory, stagingPathFor } from '../../../src/client/staging-file';
import { RxferError } from '../../../src/errors/rxfer-error';
import { failureOf } from '../../helpers/failure-of';

/**
 * What the client does before a download's name changes (src/client/staging-file.ts), on real files
 * in a temp folder: the staging file beside the target, the resume file and its lock, the size check,
 * and every failure of the commit (a write, the fsync, the stat, the close, the rename: injected once
 * by support/client-fs-faults.ts), each leaving the target as it was and no staging file behind.
 */

let dir: string;
let target: string;
const open: StagingFile[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rxfer-staging-'));
  target = join(dir, 'file.bin');
});
afterEach(async () => {
  disarm();
  for (const file of open.splice(0)) await file.discard();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(restoreFs);

const track = (file: StagingFile): StagingFile => {
  open.push(file);
  return file;
};
const create = async () => track(await StagingFile.create(target));
const resumable = async () => track(await StagingFile.resumable(target, 'sha256'));
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

const write = (stream: WriteStream, data: Buffer | string): Promise<void> =>
  new Promise((resolve, reject) => stream.write(data, (err) => (err ? reject(err) : resolve())));

/** Names in the folder other than the target: staging, resume and lock files. */
const leftovers = () => readdirSync(dir).filter((name) => name !== basename(target));

/** Whether descriptor `fd` still refers to `path`, removed or not (closed, or reused for another file: no). */
const fdIsOpenOn = (fd: number, path: string): boolean => {
  try {
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    return target === path || target === `${path} (deleted)`;
  } catch {
    return false;
  }
};
const fdOf = (file: StagingFile): number => (file as unknown as { fd: number }).fd;

describe('assertStagedSize', () => {
  test('the verified size passes; any other is LOCAL_IO naming both numbers', () => {
    expect(() => assertStagedSize('/x/.s', 5, 5, 'nothing done')).not.toThrow();
    const err = (() => {
      try {
        assertStagedSize('/x/.s', 4, 5, 'nothing done');
      } catch (caught) {
        return caught as RxferError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(RxferError);
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe('/x/.s holds 4 bytes on disk, but 5 were received and verified; nothing done');
    expect(err.detail).toEqual({ path: '/x/.s', onDisk: 4, verified: 5 });
  });
});

describe('refuseDirectory', () => {
  test('a folder is refused with LOCAL_IO; a file, a missing name and a loop of links are let through', () => {
    mkdirSync(join(dir, 'sub'));
    expect(() => refuseDirectory(join(dir, 'sub'))).toThrow(
      expect.objectContaining({ code: 'LOCAL_IO', message: `cannot write ${join(dir, 'sub')}: it is a directory`, detail: { path: join(dir, 'sub') } }),
    );
    writeFileSync(target, 'x');
    expect(() => refuseDirectory(target)).not.toThrow();
    expect(() => refuseDirectory(join(dir, 'missing'))).not.toThrow();
    symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'));
    symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'));
    expect(() => refuseDirectory(join(dir, 'loop-a'))).not.toThrow();
  });
});

describe('staging and resume names', () => {
  test('beside the target, hidden, and fresh each time', () => {
    const a = stagingPathFor('/d/f.txt');
    const b = stagingPathFor('/d/f.txt');
    expect(dirname(a)).toBe('/d');
    expect(basename(a).startsWith('.f.txt.rxfer-part-')).toBe(true);
    expect(a).not.toBe(b);
    expect(partialPathFor('/d/f.txt')).toBe('/d/.f.txt.rxfer-resume');
  });

  test('a long name: the staging name cut to 160 bytes of UTF-8, the resume name to 147 and a digest of the whole name', () => {
    const sha12 = (name: string) => createHash('sha256').update(name).digest('hex').slice(0, 12);
    const kept = (name: string, cut: string) => `/d/.${cut}~${sha12(name)}.rxfer-resume`;
    expect(partialPathFor(`/d/${'a'.repeat(300)}`)).toBe(kept('a'.repeat(300), 'a'.repeat(147)));
    expect(partialPathFor(`/d/${'a'.repeat(160)}`)).toBe(`/d/.${'a'.repeat(160)}.rxfer-resume`);
    expect(partialPathFor(`/d/${'é'.repeat(100)}`)).toBe(kept('é'.repeat(100), 'é'.repeat(73)));
    // The cut is at the first character that does not fit, even if a later one would.
    expect(partialPathFor(`/d/${'a'.repeat(159)}éb`)).toBe(kept(`${'a'.repeat(159)}éb`, 'a'.repeat(147)));
    expect(basename(stagingPathFor(`/d/${'a'.repeat(300)}`)).startsWith(`.${'a'.repeat(160)}.rxfer-part-`)).toBe(true);
    expect(basename(stagingPathFor(`/d/${'a'.repeat(159)}éb`)).startsWith(`.${'a'.repeat(159)}.rxfer-part-`)).toBe(true);
    // Characters of four bytes (two UTF-16 units each), and names just under and over the length
    // below which no counting is needed (53 units: at most 159 bytes).
    expect(partialPathFor(`/d/${'😀'.repeat(41)}`)).toBe(kept('😀'.repeat(41), '😀'.repeat(36)));
    expect(partialPathFor(`/d/${'€'.repeat(53)}`)).toBe(`/d/.${'€'.repeat(53)}.rxfer-resume`);
    expect(partialPathFor(`/d/${'€'.repeat(54)}`)).toBe(kept('€'.repeat(54), '€'.repeat(49)));
  });

  test('two long names that begin alike never share a resume file (hostile pass g); each fits NAME_MAX with its lock', () => {
    const one = `/d/${'n'.repeat(170)}-one`;
    const two = `/d/${'n'.repeat(170)}-two`;
    expect(partialPathFor(one)).not.toBe(partialPathFor(two));
    for (const path of [partialPathFor(one), `${partialPathFor(two)}.lock`, partialPathFor(`/d/${'😀'.repeat(100)}`)]) {
      expect(Buffer.byteLength(basename(path))).toBeLessThanOrEqual(255);
      expect(isUnfinishedDownloadName(basename(path))).toBe(true);
    }
  });

  test('isUnfinishedDownloadName: the names this client gives its resume files, their locks and staging files, and no others', () => {
    const target = '/d/big.iso';
    for (const path of [partialPathFor(target), `${partialPathFor(target)}.lock`, stagingPathFor(target), partialPathFor(`/d/${'é'.repeat(100)}`), stagingPathFor('/d/.hidden')]) {
      expect({ name: basename(path), unfinished: isUnfinishedDownloadName(basename(path)) }).toEqual({ name: basename(path), unfinished: true });
    }
    expect(isUnfinishedDownloadName('.x.rxfer-part-0123456789ab-1z')).toBe(true);
    for (const name of ['big.iso', '.big.iso', '.rxfer-resume', 'x.rxfer-resume', 'a.b.rxfer-resume', 'a.b.rxfer-part-0123456789ab-1', '.x.rxfer-resume.bak', '.x.rxfer-resume.lock.old', '.x.rxfer-part-0123456789ab', '.x.rxfer-part-0123456789a-1', '.x.rxfer-part-0123456789AB-1', '.x.rxfer-part-0123456789ab-', '.x.rxfer-partial']) {
      expect({ name, unfinished: isUnfinishedDownloadName(name) }).toEqual({ name, unfinished: false });
    }
  });

  test('beside the target in its folder, whatever shape the target path has', () => {
    expect(partialPathFor('/f')).toBe('/.f.rxfer-resume');
    expect(partialPathFor('f')).toBe('.f.rxfer-resume');
    expect(partialPathFor('a/b/f')).toBe('a/b/.f.rxfer-resume');
    // Not resolved: the same file as join would name.
    for (const target of ['/a//b/f', './f', 'a/./f', '../x/f', '/a/b/../f', 'a//f']) {
      expect(resolve(partialPathFor(target))).toBe(resolve(join(dirname(target), `.${basename(target)}.rxfer-resume`)));
      expect(resolve(dirname(stagingPathFor(target)))).toBe(resolve(dirname(target)));
    }
  });
});

describe('StagingFile.create and commit', () => {
  test('the body is written to a staging file beside the target and renamed over it at commit', async () => {
    writeFileSync(target, 'old content');
    const file = await create();
    expect(dirname(file.path)).toBe(dir);
    expect(file.path).not.toBe(target);
    expect(file.kept).toBeUndefined();
    expect(existsSync(file.path)).toBe(true);
    const stream = await file.startAt(0);
    expect(file.stream).toBe(stream);
    await write(stream, 'new ');
    await write(stream, 'content!');
    expect(readFileSync(target, 'utf8')).toBe('old content');
    await file.commit(12);
    expect(readFileSync(target, 'utf8')).toBe('new content!');
    expect(leftovers()).toEqual([]);
    expect(file.writeError).toBeUndefined();
  });

  test('the stream before startAt is an INTERNAL error', async () => {
    const file = await create();
    expect(() => file.stream).toThrow(expect.objectContaining({ code: 'INTERNAL', message: 'the staging file was not started' }));
  });

  test('a staging file that cannot be created: LOCAL_IO about writing into the folder', async () => {
    const folder = join(dir, 'missing');
    const err = await failureOf(StagingFile.create(join(folder, 'x')));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`cannot write into the folder ${folder}: no such file or folder (ENOENT)`);
  });

  test('a size other than the verified one renames nothing and removes the staging file', async () => {
    writeFileSync(target, 'old');
    const file = await create();
    await write(await file.startAt(0), 'abcd');
    const err = await failureOf(file.commit(5));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`${file.path} holds 4 bytes on disk, but 5 were received and verified; nothing was renamed; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test.each([
    ['write', 'writev', 'write', 'the disk is full (ENOSPC, no space left on device)', 'ENOSPC'],
    ['fsync (in the thread pool: fsyncs were slow)', 'fsync', 'fsync', 'EIO injected failure', 'EIO'],
    ['fsync (synchronous: fsyncs were quick)', 'fsyncSync', 'fsync', 'EIO injected failure', 'EIO'],
    ['stat', 'fstat', 'stat', 'EIO injected failure', 'EIO'],
    ['close', 'close', 'close', 'EIO injected failure', 'EIO'],
  ] as const)('a failed %s: LOCAL_IO naming it, nothing renamed, no staging file', async (_label, call, action, reason, code) => {
    writeFileSync(target, 'old');
    const file = await create();
    const stream = await file.startAt(0);
    // Two writes in a row: the stream hands the second to writev once the first is in flight.
    stream.write('ab');
    stream.write('cd');
    nextFsyncBy(call);
    failNext(call, (path) => path === file.path, code);
    const err = await failureOf(file.commit(4));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`cannot ${action} ${file.path}: ${reason}; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
    expect(fdIsOpenOn(fdOf(file), file.path)).toBe(false);
  });

  test('a write error the stream hands end() as ERR_STREAM_DESTROYED (no failure noted by its listener) still fails the commit', async () => {
    // What end()'s callback gets from a stream destroyed under it; the 'error' listener ignores that code.
    writeFileSync(target, 'old');
    const file = await create();
    const stream = await file.startAt(0);
    stream.write('ab');
    stream.write('cd');
    failNext('writev', (path) => path === file.path, 'ERR_STREAM_DESTROYED');
    const err = await failureOf(file.commit(4));
    expect(err.message).toBe(`cannot write ${file.path}: ERR_STREAM_DESTROYED injected failure; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test("a failure only the stream's 'error' listener notes, as end() completes (the background writeback's), fails the commit as a write", async () => {
    // The writeback's fdatasync fails by destroying the stream; if that lands as end() calls back, end()
    // reports success and only the listener saw it. Made deterministic by noting the failure inside end()'s
    // own callback, before it returns: the commit must stop at the flush, before any fsync or close.
    writeFileSync(target, 'old');
    const file = await create();
    const stream = await file.startAt(0);
    await write(stream, 'abcd');
    const end = stream.end.bind(stream) as (callback: (err?: Error | null) => void) => WriteStream;
    Object.assign(stream, {
      end: (callback: (err?: Error | null) => void) =>
        end((err) => {
          stream.emit('error', Object.assign(new Error('writeback failed'), { code: 'EIO' }));
          callback(err);
        }),
    });
    const err = await failureOf(file.commit(4));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`cannot write ${file.path}: EIO writeback failed; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test('a failed rename: LOCAL_IO naming both paths, the target as it was, no staging file', async () => {
    writeFileSync(target, 'old');
    const file = await create();
    await write(await file.startAt(0), 'abcd');
    failNext('renameSync', (path) => path === file.path);
    const err = await failureOf(file.commit(4));
    expect(err.message).toBe(`cannot rename ${file.path} to ${target}: EIO injected failure; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test('a write that fails while the body arrives is the writeError, and the commit refuses', async () => {
    const file = await create();
    const stream = await file.startAt(0);
    failNext('write', (path) => path === file.path, 'ENOSPC');
    await expect(write(stream, 'abcd')).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(file.writeError?.message).toBe(`cannot write ${file.path}: the disk is full (ENOSPC, no space left on device); ${target} was not changed`);
    const err = await failureOf(file.commit(4));
    expect(err.message).toBe(file.writeError!.message);
    expect(existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  test('a background writeback that fails closes the stream: giving up reports it and does not wait for a second close', async () => {
    // The first early writeback comes after 32 MiB (src/io/early-writeback.ts).
    const file = await create();
    const stream = await file.startAt(0);
    failNext('fdatasync', (path) => path === file.path);
    // Not events.once: it rejects on the 'error' that comes first.
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    await write(stream, Buffer.alloc(32 * 1024 * 1024, 1));
    await closed;
    const err = await file.giveUp(true);
    expect(err?.message).toBe(`cannot write ${file.path}: EIO injected failure; ${target} was not changed`);
    expect(leftovers()).toEqual([]);
  });

  test('an ordinary staging file is removed on giveUp, interrupted or not', async () => {
    for (const interrupted of [true, false]) {
      const file = await create();
      await write(await file.startAt(0), 'abc');
      expect(await file.giveUp(interrupted)).toBeUndefined();
      expect(leftovers()).toEqual([]);
    }
  });

  test('discard closes the descriptor once: a second discard does not close a number handed out since', async () => {
    const file = await create();
    const fd = fdOf(file);
    await file.discard();
    expect(existsSync(file.path)).toBe(false);
    expect(fdIsOpenOn(fd, file.path)).toBe(false);
    const other = join(dir, 'other');
    const otherFd = openSync(other, 'w');
    try {
      await file.discard();
      expect(fstatSync(otherFd).isFile()).toBe(true);
    } finally {
      closeSync(otherFd);
    }
  });

  test('discard after startAt closes the descriptor through the stream', async () => {
    const file = await create();
    const fd = fdOf(file);
    await write(await file.startAt(0), 'abc');
    await file.discard();
    await file.discard();
    expect(fdIsOpenOn(fd, file.path)).toBe(false);
    expect(leftovers()).toEqual([]);
  });
});

describe('the folder fsync after the rename', () => {
  test.each([
    ['an ordinary staging file, fsyncs quick', create, 'fsyncSync', 'fsyncSync'],
    ['an ordinary staging file, fsyncs slow', create, 'fsync', 'handleSync'],
    ['a resume file, fsyncs quick', resumable, 'fsyncSync', 'fsyncSync'],
    ['a resume file, fsyncs slow', resumable, 'fsync', 'handleSync'],
  ] as const)('fails (%s): NOT_DURABLE, the file in place and whole, no lock or staging file left', async (_label, make, pace, call) => {
    writeFileSync(target, 'old');
    const before = openFds();
    const file = await make();
    await write(await file.startAt(0), 'new content');
    nextFsyncBy(pace);
    failNext(call, (path) => path === dir);
    const err = await failureOf(file.commit(11));
    expect(failed.at(-1)).toEqual({ call, path: dir });
    expect(err.code).toBe('NOT_DURABLE');
    expect(err.message).toBe(`${target} is saved, whole and verified, but its folder could not be synced (EIO injected failure): a crash of this machine could still undo that`);
    expect(readFileSync(target, 'utf8')).toBe('new content');
    expect(leftovers()).toEqual([]);
    expect(openFds()).toBe(before);
    // The resume file's lock went with the rename: the next download of the target may take the name.
    const next = await resumable();
    expect(next.path).toBe(partialPathFor(target));
  });

  test.each(['EINVAL', 'ENOTSUP', 'EISDIR'])('on a file system that cannot fsync a folder (%s): the commit succeeds', async (code) => {
    const file = await create();
    await write(await file.startAt(0), 'abc');
    nextFsyncBy('fsyncSync');
    failNext('fsyncSync', (path) => path === dir, code);
    await file.commit(3);
    expect(failed.at(-1)).toEqual({ call: 'fsyncSync', path: dir });
    expect(readFileSync(target, 'utf8')).toBe('abc');
  });
});

describe('StagingFile.resumable', () => {
  test('the first attempt creates the resume file empty, holding its lock until the commit', async () => {
    const file = await resumable();
    expect(file.path).toBe(partialPathFor(target));
    expect(file.kept).toBeUndefined();
    expect(readFileSync(`${file.path}.lock`, 'utf8')).toBe(`${process.pid}\n`);
    await write(await file.startAt(0), 'hello');
    await file.commit(5);
    expect(readFileSync(target, 'utf8')).toBe('hello');
    expect(leftovers()).toEqual([]);
    expect(StagingFile.hasKept(target)).toBe(false);
  });

  test('an interrupted download keeps its bytes; the next attempt hashes them and goes on after them', async () => {
    const first = await resumable();
    expect(await first.giveUp(true)).toBeUndefined();
    expect(StagingFile.hasKept(target)).toBe(true);
    expect(existsSync(`${first.path}.lock`)).toBe(false);

    const second = await resumable();
    expect(second.kept).toBeUndefined();
    await write(await second.startAt(0), 'hello ');
    expect(await second.giveUp(true)).toBeUndefined();
    expect(readFileSync(partialPathFor(target), 'utf8')).toBe('hello ');

    const third = await resumable();
    expect(third.kept?.bytes).toBe(6);
    expect(third.kept?.hash.hex()).toBe(sha256('hello '));
    await write(await third.startAt(6), 'world');
    await third.commit(11);
    expect(readFileSync(target, 'utf8')).toBe('hello world');
    expect(leftovers()).toEqual([]);
  });

  test('a resume from before the end cuts off what follows first', async () => {
    writeFileSync(partialPathFor(target), 'hello wrong');
    const file = await resumable();
    expect(file.kept?.bytes).toBe(11);
    await write(await file.startAt(6), 'world');
    await file.commit(11);
    expect(readFileSync(target, 'utf8')).toBe('hello world');
    writeFileSync(partialPathFor(target), 'abcdef');
    const again = await resumable();
    await write(await again.startAt(2), 'X');
    await again.commit(3);
    expect(readFileSync(target, 'utf8')).toBe('abX');
  });

  test('a fresh resume file is opened once: no descriptor is left behind', async () => {
    const before = openFds();
    const file = await StagingFile.resumable(target, 'sha256');
    expect(openFds()).toBe(before + 1);
    await file.discard();
    expect(openFds()).toBe(before);
  });

  test('a cut that fails: LOCAL_IO naming the truncate, the target as it was', async () => {
    writeFileSync(partialPathFor(target), 'abcdef');
    const file = await resumable();
    failNext('ftruncate', (path) => path === file.path);
    await expect(file.startAt(2)).rejects.toMatchObject({ code: 'LOCAL_IO', message: `cannot truncate ${file.path}: EIO injected failure; ${target} was not changed` });
  });

  test('kept bytes that cannot be read back: LOCAL_IO naming the read, descriptor closed, lock released', async () => {
    writeFileSync(partialPathFor(target), 'kept');
    failNext('read', (path) => path === partialPathFor(target));
    const before = openFds();
    const err = await failureOf(StagingFile.resumable(target, 'sha256'));
    expect(err.message).toBe(`cannot read ${partialPathFor(target)}: EIO injected failure`);
    expect(openFds()).toBe(before);
    expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
  });

  test('an empty resume file is nothing kept', async () => {
    writeFileSync(partialPathFor(target), '');
    const file = await resumable();
    expect(file.kept).toBeUndefined();
  });

  test('while another download holds the resume file, a staging file of its own', async () => {
    const first = await resumable();
    const second = await resumable();
    expect(second.path).not.toBe(first.path);
    expect(second.path.includes('.rxfer-part-')).toBe(true);
    await write(await second.startAt(0), 'two');
    // Not resumable: an interrupted one is removed, not kept.
    await second.giveUp(true);
    expect(existsSync(second.path)).toBe(false);
    await first.discard();
    expect(existsSync(`${first.path}.lock`)).toBe(false);
  });

  test('interrupted before the body started: the (empty) resume file stays', async () => {
    const file = await resumable();
    await file.giveUp(true);
    expect(existsSync(partialPathFor(target))).toBe(true);
  });

  test('a failed download (not interrupted) removes the resume file and its lock', async () => {
    const file = await resumable();
    await write(await file.startAt(0), 'abc');
    expect(await file.giveUp(false)).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  test('an interrupted download whose write failed is not kept, and gives up with the write error', async () => {
    const file = await resumable();
    const stream = await file.startAt(0);
    failNext('write', (path) => path === file.path, 'ENOSPC');
    await expect(write(stream, 'abc')).rejects.toMatchObject({ code: 'ENOSPC' });
    const err = await file.giveUp(true);
    expect(err?.message).toBe(`cannot write ${file.path}: the disk is full (ENOSPC, no space left on device); ${target} was not changed`);
    expect(leftovers()).toEqual([]);
  });

  test('an interrupted download whose last bytes cannot be flushed is not kept', async () => {
    const file = await resumable();
    const stream = await file.startAt(0);
    stream.write('ab');
    stream.write('cd');
    failNext('writev', (path) => path === file.path, 'ENOSPC');
    const err = await file.giveUp(true);
    expect(err?.code).toBe('LOCAL_IO');
    expect(leftovers()).toEqual([]);
  });

  test('a link planted as the resume file is not followed: the download stages apart, without a resume; link and lock left alone', async () => {
    writeFileSync(join(dir, 'elsewhere'), 'secret');
    symlinkSync(join(dir, 'elsewhere'), partialPathFor(target));
    const file = await StagingFile.resumable(target, 'sha256');
    expect(file.kept).toBeUndefined();
    expect(basename(file.path).startsWith(`.${basename(target)}.rxfer-part-`)).toBe(true);
    expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
    await write(await file.startAt(0), 'new');
    await file.commit(3);
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readlinkSync(partialPathFor(target))).toBe(join(dir, 'elsewhere'));
    expect(readFileSync(join(dir, 'elsewhere'), 'utf8')).toBe('secret');
  });

  test('a folder where the resume file goes (a tree copied in may hold one): staged apart, the folder left alone', async () => {
    mkdirSync(partialPathFor(target));
    writeFileSync(join(partialPathFor(target), 'inside'), 'theirs');
    const file = await StagingFile.resumable(target, 'sha256');
    expect(file.kept).toBeUndefined();
    await write(await file.startAt(0), 'new');
    await file.commit(3);
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readFileSync(join(partialPathFor(target), 'inside'), 'utf8')).toBe('theirs');
  });

  test('a FIFO or a socket where the resume file goes: staged apart, left alone (nothing written into the FIFO), no descriptor kept', async () => {
    spawnSync('mkfifo', [partialPathFor(target)]);
    expect(lstatSync(partialPathFor(target)).isFIFO()).toBe(true);
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const viaFifo = await StagingFile.resumable(target, 'sha256');
    // Its own staging file is the one descriptor more: the FIFO's was closed.
    expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore + 1);
    expect(viaFifo.kept).toBeUndefined();
    expect(viaFifo.path).not.toBe(partialPathFor(target));
    await write(await viaFifo.startAt(0), 'one');
    await viaFifo.commit(3);
    expect(readFileSync(target, 'utf8')).toBe('one');
    expect(lstatSync(partialPathFor(target)).isFIFO()).toBe(true);
    rmSync(partialPathFor(target));
    const socket = createServer().listen(partialPathFor(target));
    await once(socket, 'listening');
    try {
      const viaSocket = await StagingFile.resumable(target, 'sha256');
      expect(viaSocket.kept).toBeUndefined();
      await write(await viaSocket.startAt(0), 'two');
      await viaSocket.commit(3);
      expect(readFileSync(target, 'utf8')).toBe('two');
      expect(lstatSync(partialPathFor(target)).isSocket()).toBe(true);
      expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
    } finally {
      socket.close();
    }
  });

  test('a resume file removed while the download ran, or a staging file of its own replaced: nothing renamed, LOCAL_IO naming it', async () => {
    writeFileSync(target, 'old');
    const resumable = await StagingFile.resumable(target, 'sha256');
    await write(await resumable.startAt(0), 'verified');
    rmSync(partialPathFor(target));
    const removed = await failureOf(resumable.commit(8));
    expect(removed).toMatchObject({ code: 'LOCAL_IO', detail: { path: partialPathFor(target) } });
    expect(removed.message).toContain('was replaced or removed while the download ran');
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
    const own = await StagingFile.create(target);
    await write(await own.startAt(0), 'verified');
    writeFileSync(join(dir, 'theirs'), 'theirs');
    renameSync(join(dir, 'theirs'), own.path);
    const replaced = await failureOf(own.commit(8));
    expect(replaced).toMatchObject({ code: 'LOCAL_IO', detail: { path: own.path } });
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(readFileSync(own.path, 'utf8')).toBe('theirs');
  });

  test('the look at the path before the rename fails: LOCAL_IO, nothing renamed, the file left, the lock released', async () => {
    writeFileSync(target, 'old');
    const file = await StagingFile.resumable(target, 'sha256');
    await write(await file.startAt(0), 'verified');
    failNext('lstatSync', (path) => path === partialPathFor(target));
    const err = await failureOf(file.commit(8));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`cannot stat ${partialPathFor(target)}: EIO injected failure; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(readFileSync(partialPathFor(target), 'utf8')).toBe('verified');
    expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
  });

  test('a resume file replaced by another program while the download ran: nothing renamed, that file left alone', async () => {
    writeFileSync(target, 'old');
    const file = await StagingFile.resumable(target, 'sha256');
    await write(await file.startAt(0), 'verified');
    // Another program puts a file of its own under the resume file's name (rename over it).
    writeFileSync(join(dir, 'theirs'), 'not the verified bytes');
    renameSync(join(dir, 'theirs'), partialPathFor(target));
    const err = await failureOf(file.commit(8));
    expect(err.code).toBe('LOCAL_IO');
    expect(err).toMatchObject({ detail: { path: partialPathFor(target) } });
    expect(err.message).toBe(`${partialPathFor(target)} was replaced or removed while the download ran (by another program); nothing was renamed; ${target} was not changed`);
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(readFileSync(partialPathFor(target), 'utf8')).toBe('not the verified bytes');
    expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
  });

  test('a resume file that cannot be created: LOCAL_IO, lock released', async () => {
    failNext('openSync', (path) => path === partialPathFor(target));
    const err = await failureOf(StagingFile.resumable(target, 'sha256'));
    expect(err.message).toBe(`cannot write into the folder ${dir}: EIO injected failure`);
    expect(leftovers()).toEqual([]);
  });

  test('a kept file that cannot be read (its stat fails): LOCAL_IO, descriptor closed, lock released', async () => {
    writeFileSync(partialPathFor(target), 'kept');
    failNext('fstat', (path) => path === partialPathFor(target));
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const err = await failureOf(StagingFile.resumable(target, 'sha256'));
    expect(err.message).toBe(`cannot stat ${partialPathFor(target)}: EIO injected failure`);
    expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore);
    expect(existsSync(`${partialPathFor(target)}.lock`)).toBe(false);
  });

  test('a lock that cannot be taken (no folder): LOCAL_IO about writing into the folder', async () => {
    const folder = join(dir, 'missing');
    const err = await failureOf(StagingFile.resumable(join(folder, 'x'), 'sha256'));
    expect(err.message).toBe(`cannot write into the folder ${folder}: no such file or folder (ENOENT)`);
  });
});

describe('StagingFile.hasKept and forgetResumable', () => {
  test('hasKept looks at the resume file, even a link', () => {
    expect(StagingFile.hasKept(target)).toBe(false);
    symlinkSync(join(dir, 'nowhere'), partialPathFor(target));
    expect(StagingFile.hasKept(target)).toBe(true);
  });

  test('forgetResumable removes kept bytes and gives the lock back', async () => {
    writeFileSync(partialPathFor(target), 'kept');
    await StagingFile.forgetResumable(target);
    expect(leftovers()).toEqual([]);
    expect(ResumeLock.take(partialPathFor(target))?.release()).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  test('forgetResumable leaves the bytes another download is writing now', async () => {
    const file = await resumable();
    await write(await file.startAt(0), 'busy');
    await StagingFile.forgetResumable(target);
    expect(existsSync(file.path)).toBe(true);
    await file.commit(4);
    expect(readFileSync(target, 'utf8')).toBe('busy');
  });

  test('forgetResumable in a folder that does not exist is quiet', async () => {
    await expect(StagingFile.forgetResumable(join(dir, 'missing', 'x'))).resolves.toBeUndefined();
  });
});
