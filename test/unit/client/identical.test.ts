import { disarm, failNext, openFds, restoreFs } from './support/client-fs-faults';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identicalFiles, isIdentical } from '../../../src/client/identical';
import { hashOf } from '../../../src/integrity/hash-algorithm';

/**
 * "Already there" (src/client/identical.ts), on real files: a local file is identical to the server's
 * copy only with the same size and the same digest the server gave, small files (read in one go, up
 * to SYNC_COMPARE_MAX_BYTES) and large ones (hashed in pieces through a FileHandle) alike; anything
 * that is not a plain readable file is not.
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rxfer-identical-'));
});
afterEach(() => {
  disarm();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(restoreFs);

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const file = (name: string, data: Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
};
const bytes = (n: number, seed = 7) => Buffer.from(Array.from({ length: n }, (_, i) => (i * seed + 3) & 0xff));

describe.each([
  ['a small file', 1000],
  ['an empty file', 0],
  ['a file of exactly 256 KiB', 256 * 1024],
  ['a large file', 256 * 1024 + 1],
  ['a file of several hash pieces', 2 * 1024 * 1024 + 5],
])('isIdentical, %s', (_label, size) => {
  const data = bytes(size);
  const remote = { size, digest: sha256(data) };

  test('same size and digest: identical', async () => {
    expect(await isIdentical(file('f', data), remote, 'sha256')).toBe(true);
  });

  test('a read that fails: not identical, and the file is closed again', async () => {
    const path = file('f', data);
    if (size === 0) return; // nothing to read
    // Up to the synchronous limit (1 MiB) a file is read with readSync, beyond it through a FileHandle.
    failNext(size <= 1024 * 1024 ? 'readSync' : 'handleRead', (p) => p === path);
    const before = openFds();
    expect(await isIdentical(path, remote, 'sha256')).toBe(false);
    expect(openFds()).toBe(before);
  });

  test('a digest given in upper case is not the digest', async () => {
    expect(await isIdentical(file('f', data), { size, digest: remote.digest.toUpperCase() }, 'sha256')).toBe(false);
  });

  test('no digest from the server: never identical', async () => {
    expect(await isIdentical(file('f', data), { size }, 'sha256')).toBe(false);
  });

  test('another digest, another size, a longer or shorter file: not identical', async () => {
    const path = file('f', data);
    expect(await isIdentical(path, { size, digest: sha256(Buffer.from('other')) }, 'sha256')).toBe(false);
    expect(await isIdentical(path, { size: size + 1, digest: remote.digest }, 'sha256')).toBe(false);
    if (size > 0) expect(await isIdentical(path, { size: size - 1, digest: sha256(data.subarray(0, size - 1)) }, 'sha256')).toBe(false);
    expect(await isIdentical(file('longer', Buffer.concat([data, Buffer.from('x')])), remote, 'sha256')).toBe(false);
  });

  test('the same size with one byte changed: not identical', async () => {
    if (size === 0) return;
    const changed = Buffer.from(data);
    changed[size - 1] ^= 1;
    expect(await isIdentical(file('f', changed), remote, 'sha256')).toBe(false);
  });

  test('a missing file, a folder: not identical', async () => {
    expect(await isIdentical(join(dir, 'missing'), remote, 'sha256')).toBe(false);
    mkdirSync(join(dir, 'folder'));
    expect(await isIdentical(join(dir, 'folder'), { size: 4096, digest: remote.digest }, 'sha256')).toBe(false);
    expect(await isIdentical(join(dir, 'folder'), remote, 'sha256')).toBe(false);
  });

  test('the digest in the session’s algorithm', async () => {
    const blake3 = hashOf('blake3', data);
    expect(await isIdentical(file('f', data), { size, digest: blake3 }, 'blake3')).toBe(true);
    expect(await isIdentical(file('f', data), { size, digest: remote.digest }, 'blake3')).toBe(false);
  });
});

describe('isIdentical, what is not a plain file', () => {
  test('a FIFO under the name is refused at once (no read that waits for a writer)', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await isIdentical(fifo, { size: 0, digest: sha256(Buffer.alloc(0)) }, 'sha256')).toBe(false);
  });

  test('a device that reads as empty (/dev/null) is not an empty file', async () => {
    expect(await isIdentical('/dev/null', { size: 0, digest: sha256(Buffer.alloc(0)) }, 'sha256')).toBe(false);
  });

  test('a file that reads longer than its stat says (/proc) is not identical', async () => {
    // /proc files stat as size 0 and read as more: the one-byte-more read sees it.
    expect(await isIdentical('/proc/self/status', { size: 0, digest: sha256(Buffer.alloc(0)) }, 'sha256')).toBe(false);
  });

  test('every descriptor is closed again, small and large, identical or not', async () => {
    // 3 MiB: beyond the synchronous compare's limit (1 MiB), so the FileHandle path is taken.
    const LARGE = 3 * 1024 * 1024;
    const small = file('s', bytes(100));
    const large = file('l', bytes(LARGE));
    const before = openFds();
    for (let i = 0; i < 3; i++) {
      expect(await isIdentical(small, { size: 100, digest: sha256(bytes(100)) }, 'sha256')).toBe(true);
      expect(await isIdentical(small, { size: 100, digest: sha256(bytes(99)) }, 'sha256')).toBe(false);
      expect(await isIdentical(large, { size: LARGE, digest: sha256(bytes(LARGE)) }, 'sha256')).toBe(true);
      expect(await isIdentical(large, { size: LARGE, digest: sha256(bytes(99)) }, 'sha256')).toBe(false);
    }
    expect(openFds()).toBe(before);
  });
});

describe('identicalFiles', () => {
  test('one answer per pair, in order, for more pairs than are compared at once', async () => {
    const pairs = Array.from({ length: 40 }, (_, i) => {
      const data = bytes(50 + i, i + 1);
      const localPath = file(`f${i}`, data);
      if (i % 4 === 3) return { localPath };
      return { localPath, remote: { size: data.length, digest: i % 2 === 0 ? sha256(data) : sha256(Buffer.from('no')) } };
    });
    const expected = pairs.map((_, i) => i % 4 !== 3 && i % 2 === 0);
    expect(await identicalFiles(pairs, 'sha256')).toEqual(expected);
  });

  test('no pairs: no answers', async () => {
    expect(await identicalFiles([], 'sha256')).toEqual([]);
  });
});
