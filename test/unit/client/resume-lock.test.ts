import { disarm, failNext, openFds, restoreFs, shortWriteNext } from './support/client-fs-faults';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResumeLock } from '../../../src/client/resume-lock';

/**
 * The resume lock (src/client/resume-lock.ts), on real lock files in a temp folder: one download per
 * target writes its resume file, in this process or another; a lock whose owner is gone is taken over,
 * one being created right now is not; a lock that cannot be written leaves nothing behind.
 */

let dir: string;
const held: ResumeLock[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rxfer-resume-lock-'));
});
afterEach(() => {
  disarm();
  for (const lock of held.splice(0)) lock.release();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(restoreFs);

const resumePath = (name = 'big.bin') => join(dir, `.${name}.rxfer-resume`);
const lockOf = (path: string) => `${path}.lock`;
const take = (path: string): ResumeLock | undefined => {
  const lock = ResumeLock.take(path);
  if (lock) held.push(lock);
  return lock;
};

/** A pid no process has: a child that has exited (its pid is not reused this soon). */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
};

/** A lock file as another process leaves it, `ageMs` old. */
const plantLock = (path: string, content: string, ageMs = 0): void => {
  writeFileSync(lockOf(path), content);
  const when = (Date.now() - ageMs) / 1000;
  utimesSync(lockOf(path), when, when);
};

describe('ResumeLock', () => {
  test('the lock is a file beside the resume file holding our pid, and release removes it', () => {
    const path = resumePath();
    const lock = take(path);
    expect(lock).toBeInstanceOf(ResumeLock);
    expect(readFileSync(lockOf(path), 'utf8')).toBe(`${process.pid}\n`);
    lock!.release();
    expect(existsSync(lockOf(path))).toBe(false);
  });

  test('a second download in this process does not get it until the first releases it', () => {
    const path = resumePath();
    const first = take(path)!;
    expect(take(path)).toBeUndefined();
    expect(readFileSync(lockOf(path), 'utf8')).toBe(`${process.pid}\n`);
    first.release();
    expect(take(path)).toBeInstanceOf(ResumeLock);
  });

  test('locks of two targets are apart', () => {
    expect(take(resumePath('a'))).toBeInstanceOf(ResumeLock);
    expect(take(resumePath('b'))).toBeInstanceOf(ResumeLock);
  });

  test('release is idempotent: a second release does not take the lock from its next holder', () => {
    const path = resumePath();
    const first = take(path)!;
    first.release();
    const second = take(path)!;
    first.release();
    expect(existsSync(lockOf(path))).toBe(true);
    expect(take(path)).toBeUndefined();
    second.release();
    expect(existsSync(lockOf(path))).toBe(false);
  });

  test('release of a lock file someone removed is quiet', () => {
    const path = resumePath();
    const lock = take(path)!;
    rmSync(lockOf(path));
    expect(() => lock.release()).not.toThrow();
    expect(take(path)).toBeInstanceOf(ResumeLock);
  });

  test('a lock held by another live process is respected', () => {
    const path = resumePath();
    plantLock(path, `${process.ppid}\n`, 60_000);
    expect(take(path)).toBeUndefined();
    expect(readFileSync(lockOf(path), 'utf8')).toBe(`${process.ppid}\n`);
  });

  test('a lock of a process of another user (kill gives EPERM) is respected', () => {
    // As root every kill(pid, 0) succeeds, so the EPERM answer is given for one pid only.
    const path = resumePath();
    const other = deadPid();
    const realKill = process.kill.bind(process);
    const kill = jest.spyOn(process, 'kill').mockImplementation((pid, signal) => {
      if (pid === other) throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
      return realKill(pid, signal);
    });
    try {
      plantLock(path, `${other}\n`, 60_000);
      expect(take(path)).toBeUndefined();
    } finally {
      kill.mockRestore();
    }
  });

  test('a lock whose process is gone is taken over', () => {
    const path = resumePath();
    plantLock(path, `${deadPid()}\n`);
    expect(take(path)).toBeInstanceOf(ResumeLock);
    expect(readFileSync(lockOf(path), 'utf8')).toBe(`${process.pid}\n`);
  });

  test('a lock with our own pid that we do not hold was left by an earlier process with that pid: taken over', () => {
    const path = resumePath();
    plantLock(path, `${process.pid}\n`);
    expect(take(path)).toBeInstanceOf(ResumeLock);
  });

  test.each([
    ['empty', ''],
    ['not a number', 'abc\n'],
    ['zero', '0\n'],
    ['negative', '-5\n'],
  ])('a fresh lock without a pid (%s) is being created by someone: not taken', (_label, content) => {
    const path = resumePath();
    plantLock(path, content);
    expect(take(path)).toBeUndefined();
    expect(readFileSync(lockOf(path), 'utf8')).toBe(content);
  });

  test.each([
    ['empty', ''],
    ['not a number', 'abc\n'],
    ['zero', '0\n'],
  ])('an old lock without a pid (%s) is left over: taken over', (_label, content) => {
    const path = resumePath();
    plantLock(path, content, 60_000);
    expect(take(path)).toBeInstanceOf(ResumeLock);
    expect(readFileSync(lockOf(path), 'utf8')).toBe(`${process.pid}\n`);
  });

  test('an unreadable lock is left over from exactly ten seconds on (the clock pinned)', () => {
    const path = resumePath();
    const written = 1_700_000_000_000;
    writeFileSync(lockOf(path), '');
    utimesSync(lockOf(path), written / 1000, written / 1000);
    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(written + 9_999);
      expect(take(path)).toBeUndefined();
      now.mockReturnValue(written + 10_000);
      expect(take(path)).toBeInstanceOf(ResumeLock);
    } finally {
      now.mockRestore();
    }
  });

  test('a lock that cannot be removed (a folder in its place) is not taken, and the attempts end', () => {
    const path = resumePath();
    mkdirSync(lockOf(path));
    const when = (Date.now() - 60_000) / 1000;
    utimesSync(lockOf(path), when, when);
    expect(take(path)).toBeUndefined();
  });

  test('a folder that does not exist: the error is thrown', () => {
    expect(() => ResumeLock.take(join(dir, 'missing', '.x.rxfer-resume'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  test('a lock whose pid cannot be written is removed and the error thrown', () => {
    const path = resumePath();
    const before = openFds();
    failNext('writeSync', (p) => p === lockOf(path), 'ENOSPC');
    expect(() => ResumeLock.take(path)).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(existsSync(lockOf(path))).toBe(false);
    expect(openFds()).toBe(before);
    expect(take(path)).toBeInstanceOf(ResumeLock);
  });

  test('a short write of the pid is an EIO, and nothing is left behind', () => {
    const path = resumePath();
    const before = openFds();
    shortWriteNext((p) => p === lockOf(path), 2);
    expect(() => ResumeLock.take(path)).toThrow(expect.objectContaining({ code: 'EIO', message: `short write to ${lockOf(path)}` }));
    expect(existsSync(lockOf(path))).toBe(false);
    expect(openFds()).toBe(before);
  });

  test('a failed close is reported once (the descriptor is not closed twice) and nothing is left behind', () => {
    const path = resumePath();
    failNext('closeSync', (p) => p === lockOf(path), 'EIO');
    expect(() => ResumeLock.take(path)).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'close' }));
    expect(existsSync(lockOf(path))).toBe(false);
  });
});
