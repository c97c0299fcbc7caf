import { disarm, failNext, failed, nextFsyncBy, openFds, restoreFs, shortWriteNext } from './support/client-fs-faults';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type InMemorySink, SMALL_DOWNLOAD_MAX_BYTES, SmallStagingFile } from '../../../src/client/small-staging-file';
import { failureOf } from '../../helpers/failure-of';

/**
 * A small download's staging (src/client/small-staging-file.ts), on real files in a temp folder: the
 * bytes are held in memory and written, fsynced, size-checked and renamed at commit; each step that
 * fails (injected once by support/client-fs-faults.ts) leaves the target as it was, no staging file
 * and no open descriptor, and says which step and which path.
 */

let dir: string;
let target: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rxfer-small-staging-'));
  target = join(dir, 'small.txt');
});
afterEach(() => {
  disarm();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(restoreFs);

const write = async (sink: InMemorySink, data: string): Promise<void> => sink.keep(Buffer.from(data));

/** A staging file that has received `parts`, one write each. */
const received = async (parts: string[]): Promise<SmallStagingFile> => {
  const file = new SmallStagingFile(target);
  const stream = await file.startAt(0);
  for (const part of parts) await write(stream, part);
  return file;
};

const leftovers = () => readdirSync(dir).filter((name) => name !== basename(target));
const isStaging = (path: string) => basename(path).startsWith(`.${basename(target)}.rxfer-part-`);

describe('SmallStagingFile', () => {
  test('small means up to 64 KiB', () => {
    expect(SMALL_DOWNLOAD_MAX_BYTES).toBe(65536);
  });

  test('one chunk, several chunks, none: the target holds exactly what was received', async () => {
    writeFileSync(target, 'old content');
    await (await received(['hello'])).commit(5);
    expect(readFileSync(target, 'utf8')).toBe('hello');
    await (await received(['he', 'll', 'o w', 'orld'])).commit(11);
    expect(readFileSync(target, 'utf8')).toBe('hello world');
    await (await received([])).commit(0);
    expect(readFileSync(target, 'utf8')).toBe('');
    expect(leftovers()).toEqual([]);
  });

  test('nothing is written before the commit; giveUp leaves nothing', async () => {
    writeFileSync(target, 'old');
    const file = await received(['new']);
    expect(leftovers()).toEqual([]);
    expect(await file.giveUp(true)).toBeUndefined();
    expect(file.writeError).toBeUndefined();
    expect(file.kept).toBeUndefined();
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test('a small download does not resume', async () => {
    await expect(new SmallStagingFile(target).startAt(1)).rejects.toMatchObject({ code: 'INTERNAL', message: 'a small download does not resume' });
  });

  test('short writes are finished at the right offset', async () => {
    const file = await received(['abcdefgh']);
    shortWriteNext(isStaging, 3);
    await file.commit(8);
    expect(readFileSync(target, 'utf8')).toBe('abcdefgh');
  });

  test('a file system that takes no bytes is an EIO, not a loop', async () => {
    writeFileSync(target, 'old');
    const file = await received(['abc']);
    shortWriteNext(isStaging, 0);
    const err = await failureOf(file.commit(3));
    expect(err.message).toMatch(new RegExp(`^cannot write ${dir}/\\.small\\.txt\\.rxfer-part-[^ ]+: EIO the file system took no bytes at offset 0; ${target} was not changed$`));
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test('a size other than the verified one renames nothing', async () => {
    writeFileSync(target, 'old');
    const file = await received(['abcd']);
    const err = await failureOf(file.commit(5));
    expect(err.message).toMatch(new RegExp(`holds 4 bytes on disk, but 5 were received and verified; nothing was renamed; ${target} was not changed$`));
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
  });

  test('a folder that does not exist: LOCAL_IO about writing into the folder', async () => {
    const folder = join(dir, 'missing');
    const file = new SmallStagingFile(join(folder, 'x'));
    await write(await file.startAt(0), 'abc');
    const err = await failureOf(file.commit(3));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toBe(`cannot write into the folder ${folder}: no such file or folder (ENOENT); ${join(folder, 'x')} was not changed`);
  });

  test.each([
    ['write', 'writeSync', 'write', 'ENOSPC', 'the disk is full (ENOSPC, no space left on device)'],
    ['fsync (in the thread pool: fsyncs were slow)', 'fsync', 'fsync', 'EIO', 'EIO injected failure'],
    ['fsync (synchronous: fsyncs were quick)', 'fsyncSync', 'fsync', 'EIO', 'EIO injected failure'],
    ['stat', 'fstatSync', 'stat', 'EIO', 'EIO injected failure'],
    ['close', 'closeSync', 'close', 'EIO', 'EIO injected failure'],
  ] as const)('a failed %s: LOCAL_IO naming the step and the staging file, target unchanged, nothing left', async (_label, call, step, code, reason) => {
    writeFileSync(target, 'old');
    const file = await received(['abc']);
    const before = openFds();
    nextFsyncBy(call);
    failNext(call, isStaging, code);
    const err = await failureOf(file.commit(3));
    expect(err.code).toBe('LOCAL_IO');
    expect(err.message).toMatch(new RegExp(`^cannot ${step} ${dir}/\\.small\\.txt\\.rxfer-part-[^ ]+: ${reason.replace(/[()]/g, '\\$&')}; ${target} was not changed$`));
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
    expect(openFds()).toBe(before);
  });

  test.each([
    ['synchronous: fsyncs were quick', 'fsyncSync', 'fsyncSync', 'EIO', 'EIO injected failure'],
    ['in the thread pool: fsyncs were slow', 'fsync', 'handleSync', 'EIO', 'EIO injected failure'],
    ['a full disk', 'fsyncSync', 'fsyncSync', 'ENOSPC', 'the disk is full (ENOSPC, no space left on device)'],
  ] as const)('a folder fsync that fails after the rename (%s): NOT_DURABLE, saying the file is in place, whole', async (_label, pace, call, code, reason) => {
    writeFileSync(target, 'old');
    const file = await received(['new ', 'bytes']);
    const before = openFds();
    nextFsyncBy(pace);
    failNext(call, (path) => path === dir, code);
    const err = await failureOf(file.commit(9));
    expect(failed.at(-1)).toEqual({ call, path: dir });
    expect(err.code).toBe('NOT_DURABLE');
    expect(err.message).toBe(`${target} is saved, whole and verified, but its folder could not be synced (${reason}): a crash of this machine could still undo that`);
    expect(err.detail).toEqual({ path: target, errno: code });
    expect(readFileSync(target, 'utf8')).toBe('new bytes');
    expect(leftovers()).toEqual([]);
    expect(openFds()).toBe(before);
  });

  test.each([
    ['a file system that cannot fsync a folder', 'EINVAL', 'fsyncSync'],
    ['a file system that cannot fsync a folder', 'ENOTSUP', 'fsyncSync'],
    ['a file system that cannot fsync a folder', 'EOPNOTSUPP', 'fsyncSync'],
    ['a file system that cannot fsync a folder', 'EISDIR', 'fsyncSync'],
    ['a folder it may write into but not open (a drop box)', 'EACCES', 'openSync'],
    ['a folder it may write into but not open (a drop box)', 'EPERM', 'openSync'],
  ] as const)('%s (%s from %s): the commit succeeds', async (_what, code, call) => {
    const file = await received(['abc']);
    nextFsyncBy('fsyncSync');
    failNext(call, (path) => path === dir, code);
    await file.commit(3);
    expect(failed.at(-1)).toEqual({ call, path: dir });
    expect(readFileSync(target, 'utf8')).toBe('abc');
  });

  test('a failed rename: LOCAL_IO naming both paths, target unchanged, nothing left', async () => {
    writeFileSync(target, 'old');
    const file = await received(['abc']);
    failNext('renameSync', isStaging);
    const err = await failureOf(file.commit(3));
    expect(err.message).toMatch(new RegExp(`^cannot rename ${dir}/\\.small\\.txt\\.rxfer-part-[^ ]+ to ${target}: EIO injected failure; ${target} was not changed$`));
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(leftovers()).toEqual([]);
    expect(existsSync(target)).toBe(true);
  });
});
