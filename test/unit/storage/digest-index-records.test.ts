import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hashPrefixModule from '../../../src/integrity/hash-prefix';
import { hashOf } from '../../../src/integrity/hash-algorithm';
import { DigestIndex, SETTLED_MS, SMALL_FILE_BYTES, hashHandle } from '../../../src/storage/digest-index';
import { untilSettled } from '../../helpers/settled';

/** DigestIndex's sidecars, the small/large split, and hashing on demand (digest-index.test.ts has the basics). */
describe('DigestIndex records', () => {
  let root: string;
  let index: DigestIndex;
  const sums = () => join(root, '.rxfer', 'sums');
  const sidecar = (name: string) => join(sums(), createHash('sha256').update(name).digest('hex') + '.json');
  const sidecars = async () => (await readdir(sums())).filter((entry) => entry !== 'folders');
  const large = Buffer.alloc(SMALL_FILE_BYTES + 1, 3);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-digest-records-'));
    index = new DigestIndex(root);
    await index.init();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(root, { recursive: true, force: true });
  });

  const file = async (name: string, bytes: Buffer | string) => {
    await writeFile(join(root, name), bytes);
    return stat(join(root, name));
  };
  /**
   * A file put there by other means, left alone for more than two seconds: old enough for a digest
   * hashed on demand to be recorded (its ctime, which no utimes can set back, is what counts).
   */
  const settledFile = async (name: string, bytes: Buffer | string) => {
    await writeFile(join(root, name), bytes);
    await untilSettled();
    return stat(join(root, name));
  };
  const digestOfFile = async (name: string, stats: Stats, algorithm: 'sha256' | 'blake3') => {
    const handle = await open(join(root, name));
    try {
      return await index.digestOf(name, handle, stats, algorithm);
    } finally {
      await handle.close();
    }
  };

  test('init makes the sums and folder-log folders', async () => {
    expect(await readdir(sums())).toEqual(['folders']);
  });

  test('exactly SMALL_FILE_BYTES is small: its digest goes to the folder log, not a sidecar', async () => {
    const stats = await file('edge.bin', Buffer.alloc(SMALL_FILE_BYTES, 1));
    await index.remember('edge.bin', stats, 'sha256', 'd-edge');
    expect(await sidecars()).toEqual([]);
    expect(await index.lookup('edge.bin', stats, 'sha256')).toBe('d-edge');
    expect((await index.folderDigests('')).get('edge.bin', stats, 'sha256')).toBe('d-edge');
    // A sidecar for a small file is not looked at.
    await writeFile(sidecar('edge.bin'), JSON.stringify({ name: 'edge.bin', size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, digests: { blake3: 'x' } }));
    expect(await new DigestIndex(root).lookup('edge.bin', stats, 'blake3')).toBeUndefined();
  });

  test('a sidecar holds the name, the version and the digests; a new digest replaces, alongside joins', async () => {
    const stats = await file('big.bin', large);
    await index.remember('big.bin', stats, 'sha256', 'd-sha');
    expect(JSON.parse(await readFile(sidecar('big.bin'), 'utf8'))).toEqual({ name: 'big.bin', size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, digests: { sha256: 'd-sha' } });
    await index.remember('big.bin', stats, 'blake3', 'd-b3', true);
    expect(JSON.parse(await readFile(sidecar('big.bin'), 'utf8')).digests).toEqual({ sha256: 'd-sha', blake3: 'd-b3' });
    await index.remember('big.bin', stats, 'blake3', 'd-b3-new');
    expect(JSON.parse(await readFile(sidecar('big.bin'), 'utf8')).digests).toEqual({ blake3: 'd-b3-new' });
    expect(await sidecars()).toHaveLength(1);
  });

  test('a sidecar about another name, another version or without digests is not used', async () => {
    const stats = await file('big.bin', large);
    const write = (record: object) => writeFile(sidecar('big.bin'), JSON.stringify({ name: 'big.bin', size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, digests: { sha256: 'd' }, ...record }));
    const fresh = () => new DigestIndex(root).lookup('big.bin', stats, 'sha256');
    await write({});
    expect(await fresh()).toBe('d');
    for (const wrong of [{ name: 'other.bin' }, { size: stats.size + 1 }, { mtimeMs: stats.mtimeMs + 1 }, { ino: stats.ino + 1 }, { digests: 'd' }]) {
      await write(wrong);
      expect(await fresh()).toBeUndefined();
    }
    await writeFile(sidecar('big.bin'), '{cut by a cra');
    expect(await fresh()).toBeUndefined();
  });

  test('a sidecar whose digests are not an object is not joined by a new digest', async () => {
    const stats = await file('big.bin', large);
    await writeFile(sidecar('big.bin'), JSON.stringify({ name: 'big.bin', size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, digests: 'xy' }));
    await new DigestIndex(root).remember('big.bin', stats, 'blake3', 'b', true);
    expect(JSON.parse(await readFile(sidecar('big.bin'), 'utf8')).digests).toEqual({ blake3: 'b' });
  });

  test('a record read from disk is kept in memory for the next lookup', async () => {
    const stats = await file('big.bin', large);
    await index.remember('big.bin', stats, 'sha256', 'd');
    const fresh = new DigestIndex(root);
    expect(await fresh.lookup('big.bin', stats, 'sha256')).toBe('d');
    await rm(sidecar('big.bin'));
    expect(await fresh.lookup('big.bin', stats, 'sha256')).toBe('d');
  });

  test('a record that cannot be written leaves no temp file and reports the failure', async () => {
    const stats = await file('big.bin', large);
    await mkdir(join(sidecar('big.bin'), 'in-the-way'), { recursive: true });
    await expect(index.remember('big.bin', stats, 'sha256', 'd')).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    expect((await readdir(sums())).filter((entry) => entry.endsWith('.tmp'))).toEqual([]);
  });

  test('forget removes the sidecar, also one still being written', async () => {
    const stats = await file('big.bin', large);
    const writing = index.remember('big.bin', stats, 'sha256', 'd');
    await index.forget('big.bin');
    await writing;
    expect(await sidecars()).toEqual([]);
    expect(await index.lookup('big.bin', stats, 'sha256')).toBeUndefined();
    // A second record written and forgotten later: the first write's bookkeeping is not in the way.
    await index.remember('big.bin', stats, 'sha256', 'd2');
    await index.forget('big.bin');
    expect(await sidecars()).toEqual([]);
  });

  test('forget waits only for its own name’s write', async () => {
    const stats = await file('big.bin', large);
    await index.remember('a.bin', stats, 'sha256', 'da');
    const other = index.remember('b.bin', stats, 'sha256', 'db');
    await index.forget('a.bin');
    await other;
    expect(await new DigestIndex(root).lookup('b.bin', stats, 'sha256')).toBe('db');
  });

  describe('digestOf', () => {
    test('hashes a file it knows nothing of, remembers it, and answers from memory next time', async () => {
      const stats = await settledFile('big.bin', large);
      const handle = await open(join(root, 'big.bin'));
      try {
        const hashing = jest.spyOn(hashPrefixModule, 'hashUpTo');
        expect(await index.digestOf('big.bin', handle, stats, 'sha256')).toBe(hashOf('sha256', large));
        expect(await index.digestOf('big.bin', handle, stats, 'sha256')).toBe(hashOf('sha256', large));
        expect(hashing).toHaveBeenCalledTimes(1);
        // Another algorithm joins the record (alongside).
        expect(await index.digestOf('big.bin', handle, stats, 'blake3')).toBe(hashOf('blake3', large));
        expect(JSON.parse(await readFile(sidecar('big.bin'), 'utf8')).digests).toEqual({ sha256: hashOf('sha256', large), blake3: hashOf('blake3', large) });
      } finally {
        await handle.close();
      }
    });

    test('a small file hashed on demand goes to its folder’s log', async () => {
      await mkdir(join(root, 'd'));
      const stats = await settledFile('d/s.txt', 'small');
      const handle = await open(join(root, 'd', 's.txt'));
      try {
        expect(await index.digestOf('d/s.txt', handle, stats, 'sha256')).toBe(hashOf('sha256', Buffer.from('small')));
      } finally {
        await handle.close();
      }
      expect(await new DigestIndex(root).lookup('d/s.txt', stats, 'sha256')).toBe(hashOf('sha256', Buffer.from('small')));
    });

    // A write by another program in the same tick of the file system's clock leaves size, mtime and
    // inode as they were: a digest recorded for such a version could be told of other bytes.
    test.each([
      ['large', 'big.bin', large, false],
      ['small', 's.txt', Buffer.from('small'), false],
      ['large', 'big.bin', large, true],
      ['small', 's.txt', Buffer.from('small'), true],
    ])('a %s file changed in the last seconds (its mtime set a minute back: %s), of which nothing is known: hashed each time, never recorded', async (_size, name, bytes, setBack) => {
      await writeFile(join(root, name), bytes);
      // A restore (cp -p, tar, rsync -t) sets the mtime back; the ctime it cannot.
      if (setBack) await utimes(join(root, name), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const stats = await stat(join(root, name));
      const hashing = jest.spyOn(hashPrefixModule, 'hashUpTo');
      expect(await digestOfFile(name, stats, 'sha256')).toBe(hashOf('sha256', bytes));
      expect(await digestOfFile(name, stats, 'sha256')).toBe(hashOf('sha256', bytes));
      expect(hashing).toHaveBeenCalledTimes(2);
      expect(await new DigestIndex(root).lookup(name, stats, 'sha256')).toBeUndefined();
      if (bytes.length > SMALL_FILE_BYTES) expect(await sidecars()).toEqual([]);
      else expect(await readdir(join(sums(), 'folders'))).toEqual([]);
    });

    test('a large file changed in the last seconds with a record of its version (its commit): another algorithm joins it at once', async () => {
      const stats = await file('big.bin', large);
      await index.remember('big.bin', stats, 'blake3', hashOf('blake3', large));
      expect(await digestOfFile('big.bin', stats, 'sha256')).toBe(hashOf('sha256', large));
      const fresh = new DigestIndex(root);
      expect(await fresh.lookup('big.bin', stats, 'sha256')).toBe(hashOf('sha256', large));
      expect(await fresh.lookup('big.bin', stats, 'blake3')).toBe(hashOf('blake3', large));
    });

    test('a small file changed in the last seconds: not recorded even beside its commit’s record (hashing it again is cheaper than a look at the log)', async () => {
      const bytes = Buffer.from('small');
      const stats = await file('s.txt', bytes);
      await index.remember('s.txt', stats, 'blake3', hashOf('blake3', bytes));
      expect(await digestOfFile('s.txt', stats, 'sha256')).toBe(hashOf('sha256', bytes));
      const fresh = new DigestIndex(root);
      expect(await fresh.lookup('s.txt', stats, 'sha256')).toBeUndefined();
      expect(await fresh.lookup('s.txt', stats, 'blake3')).toBe(hashOf('blake3', bytes));
    });

    test('downloads of one unrecorded version asked for at once share one hash; a later one hashes again', async () => {
      const stats = await file('big.bin', large);
      const handles = await Promise.all([1, 2, 3].map(() => open(join(root, 'big.bin'))));
      try {
        const hashing = jest.spyOn(hashPrefixModule, 'hashUpTo');
        const digests = await Promise.all(handles.map((handle) => index.digestOf('big.bin', handle, stats, 'sha256')));
        expect(digests).toEqual([1, 2, 3].map(() => hashOf('sha256', large)));
        expect(hashing).toHaveBeenCalledTimes(1);
        // Not recorded (changed in the last seconds): the next one reads it again.
        expect(await index.digestOf('big.bin', handles[0]!, stats, 'sha256')).toBe(hashOf('sha256', large));
        expect(hashing).toHaveBeenCalledTimes(2);
        // Another algorithm is another hash.
        expect(await index.digestOf('big.bin', handles[0]!, stats, 'blake3')).toBe(hashOf('blake3', large));
        expect(hashing).toHaveBeenCalledTimes(3);
      } finally {
        await Promise.all(handles.map((handle) => handle.close()));
      }
    });

    test('the look after the hash fails: the digest is still given, only not recorded', async () => {
      const stats = await settledFile('big.bin', large);
      const handle = await open(join(root, 'big.bin'));
      try {
        const look = jest.spyOn(handle, 'stat').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fstat'), { code: 'EIO' }));
        expect(await index.digestOf('big.bin', handle, stats, 'sha256')).toBe(hashOf('sha256', large));
        expect(look).toHaveBeenCalledTimes(1);
        expect(await new DigestIndex(root).lookup('big.bin', stats, 'sha256')).toBeUndefined();
        // The next look succeeds: recorded (so the one above was kept from it by the failure alone).
        expect(await index.digestOf('big.bin', handle, stats, 'sha256')).toBe(hashOf('sha256', large));
        expect(await new DigestIndex(root).lookup('big.bin', stats, 'sha256')).toBe(hashOf('sha256', large));
      } finally {
        await handle.close();
      }
    });

    test('a small file already in its folder’s log is not appended again', async () => {
      const stats = await settledFile('s.txt', 'small');
      await index.remember('s.txt', stats, 'sha256', hashOf('sha256', Buffer.from('small')));
      const log = join(sums(), 'folders', (await readdir(join(sums(), 'folders')))[0]!);
      const before = await readFile(log, 'utf8');
      expect(await digestOfFile('s.txt', stats, 'sha256')).toBe(hashOf('sha256', Buffer.from('small')));
      expect(await digestOfFile('s.txt', stats, 'sha256')).toBe(hashOf('sha256', Buffer.from('small')));
      expect(await readFile(log, 'utf8')).toBe(before);
    });

    test('a record that cannot be written does not fail the download', async () => {
      const stats = await file('big.bin', large);
      await mkdir(join(sidecar('big.bin'), 'in-the-way'), { recursive: true });
      const handle = await open(join(root, 'big.bin'));
      try {
        expect(await index.digestOf('big.bin', handle, stats, 'sha256')).toBe(hashOf('sha256', large));
      } finally {
        await handle.close();
      }
    });

    test('at most two files are hashed at once; the others wait their turn and all finish', async () => {
      const names = ['f0', 'f1', 'f2', 'f3', 'f4'];
      let running = 0;
      let most = 0;
      const real = hashPrefixModule.hashUpTo;
      jest.spyOn(hashPrefixModule, 'hashUpTo').mockImplementation(async (...args) => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        try {
          return await real(...args);
        } finally {
          running--;
        }
      });
      const handles = await Promise.all(
        names.map(async (name, i) => {
          const bytes = Buffer.alloc(SMALL_FILE_BYTES + 1 + i, i);
          const stats = await file(name, bytes);
          return { name, stats, bytes, handle: await open(join(root, name)) };
        }),
      );
      try {
        const digests = await Promise.all(handles.map(({ name, handle, stats }) => index.digestOf(name, handle, stats, 'sha256')));
        expect(digests).toEqual(handles.map(({ bytes }) => hashOf('sha256', bytes)));
        expect(most).toBe(2);
        // The slots were all given back: two more at once still run side by side.
        most = 0;
        await Promise.all(handles.slice(0, 2).map(({ handle, stats }, i) => index.digestOf(`again${i}`, handle, { ...stats, ino: stats.ino + 1000 } as Stats, 'blake3')));
        expect(most).toBe(2);
      } finally {
        await Promise.all(handles.map(({ handle }) => handle.close()));
      }
    });

    test('a hash that fails gives its slot back', async () => {
      const stats = await file('big.bin', large);
      const handle = await open(join(root, 'big.bin'));
      try {
        const spy = jest.spyOn(hashPrefixModule, 'hashUpTo');
        spy.mockRejectedValueOnce(new Error('EIO')).mockRejectedValueOnce(new Error('EIO'));
        await expect(index.digestOf('big.bin', handle, stats, 'sha256')).rejects.toThrow('EIO');
        await expect(index.digestOf('big.bin', handle, stats, 'sha256')).rejects.toThrow('EIO');
        expect(await index.digestOf('big.bin', handle, stats, 'sha256')).toBe(hashOf('sha256', large));
      } finally {
        await handle.close();
      }
    });
  });

  describe('rememberHashed: what a DOWNLOAD or a STAT records of a small file it hashed', () => {
    const logLines = async () => {
      const logs = await readdir(join(sums(), 'folders'));
      const texts = await Promise.all(logs.map((log) => readFile(join(sums(), 'folders', log), 'utf8')));
      return texts.join('').split('\n').filter((line) => line !== '').length;
    };

    test('settled: recorded once; asked again (in memory, or by a fresh server that reads its log), the log does not grow; exactly SMALL_FILE_BYTES is small', async () => {
      const edge = Buffer.alloc(SMALL_FILE_BYTES, 7);
      const [tiny, atEdge] = [await file('tiny.txt', 'tiny'), await file('edge.bin', edge)];
      await untilSettled();
      const [tinyNow, edgeNow] = [await stat(join(root, 'tiny.txt')), await stat(join(root, 'edge.bin'))];
      expect(tinyNow.ino).toBe(tiny.ino);
      expect(edgeNow.ino).toBe(atEdge.ino);
      await index.rememberHashed('tiny.txt', tinyNow, 'sha256', hashOf('sha256', Buffer.from('tiny')));
      await index.rememberHashed('edge.bin', edgeNow, 'sha256', hashOf('sha256', edge));
      expect(await logLines()).toBe(2);
      expect(await sidecars()).toEqual([]);
      // Known in memory: not even looked up.
      const lookups = jest.spyOn(index, 'lookup');
      await index.rememberHashed('tiny.txt', tinyNow, 'sha256', hashOf('sha256', Buffer.from('tiny')));
      expect(lookups).not.toHaveBeenCalled();
      // A fresh server reads the log and finds the digest there: nothing appended, for either size.
      const fresh = new DigestIndex(root);
      await fresh.rememberHashed('tiny.txt', tinyNow, 'sha256', hashOf('sha256', Buffer.from('tiny')));
      await fresh.rememberHashed('edge.bin', edgeNow, 'sha256', hashOf('sha256', edge));
      await index.rememberHashed('edge.bin', edgeNow, 'sha256', hashOf('sha256', edge));
      expect(await logLines()).toBe(2);
      expect(await sidecars()).toEqual([]);
      expect(await new DigestIndex(root).lookup('edge.bin', edgeNow, 'sha256')).toBe(hashOf('sha256', edge));
    });

    test('changed in the last seconds: not recorded, nor looked up', async () => {
      const stats = await file('fresh.txt', 'fresh');
      const lookups = jest.spyOn(index, 'lookup');
      await index.rememberHashed('fresh.txt', stats, 'sha256', hashOf('sha256', Buffer.from('fresh')));
      expect(lookups).not.toHaveBeenCalled();
      expect(await readdir(join(sums(), 'folders'))).toEqual([]);
      expect(await new DigestIndex(root).lookup('fresh.txt', stats, 'sha256')).toBeUndefined();
    });

    test('settled means changed more than SETTLED_MS ago: at exactly SETTLED_MS it is not yet', async () => {
      const stats = await file('edge.txt', 'edge');
      const digest = hashOf('sha256', Buffer.from('edge'));
      const now = jest.spyOn(Date, 'now').mockReturnValue(stats.ctimeMs + SETTLED_MS);
      await index.rememberHashed('edge.txt', stats, 'sha256', digest);
      expect(await readdir(join(sums(), 'folders'))).toEqual([]);
      now.mockReturnValue(stats.ctimeMs + SETTLED_MS + 1);
      await index.rememberHashed('edge.txt', stats, 'sha256', digest);
      now.mockRestore();
      expect(await new DigestIndex(root).lookup('edge.txt', stats, 'sha256')).toBe(digest);
    });
  });

  test('hashHandle hashes the first size bytes (fewer if the file is shorter)', async () => {
    await file('h.bin', 'abcdef');
    const handle = await open(join(root, 'h.bin'));
    try {
      expect(await hashHandle(handle, 3, 'sha256')).toBe(hashOf('sha256', Buffer.from('abc')));
      expect(await hashHandle(handle, 100, 'sha256')).toBe(hashOf('sha256', Buffer.from('abcdef')));
    } finally {
      await handle.close();
    }
  });
});
