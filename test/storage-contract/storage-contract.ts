import { createHash, randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { RxferError } from '../../src/errors/rxfer-error';
import type { RemoteName } from '../../src/protocol/remote-name';
import type { StagedWrite, StorageAdapter } from '../../src/storage/storage-adapter';

const MiB = 1024 * 1024;
export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const n = (name: string) => name as RemoteName;
const verified = (data: Buffer) => ({ size: data.length, digest: sha256(data), hash: 'sha256' as const });

/** Writes `data` in 64 KiB chunks, each awaited as the pipeline's write window would. */
export const writeAll = async (sink: Writable, data: Buffer): Promise<void> => {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    await new Promise<void>((resolve, reject) => sink.write(data.subarray(at, at + 64 * 1024), (err) => (err ? reject(err) : resolve())));
  }
};

const readAll = async (storage: StorageAdapter, name: string, from?: { offset: number; digest: string }) => {
  const handle = await storage.openRead(n(name), { from });
  const chunks: Buffer[] = [];
  for await (const chunk of handle.stream) chunks.push(chunk as Buffer);
  return { ...handle, data: Buffer.concat(chunks) };
};

const put = async (storage: StorageAdapter, name: string, data: Buffer, createOnly = false) => {
  const staged = await storage.beginWrite(n(name), { size: data.length, createOnly, measureReplaced: true });
  await writeAll(staged.sink, data);
  return staged.commit(verified(data));
};

const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (err: RxferError) => err.code);

/**
 * What every StorageAdapter promises, whatever holds the bytes (docs: storage-adapter.ts). Run
 * against local, memory and S3 by contract.test.ts; `large` is a size that takes the adapter's
 * streaming path (several S3 parts, a local partial upload).
 */
export const storageContract = (make: () => Promise<StorageAdapter>, large: number) => {
  let storage: StorageAdapter;
  beforeAll(async () => {
    storage = await make();
  });
  afterAll(() => storage?.close?.());

  test('a committed file reads back whole, with its size and digest in STAT, LIST and the read', async () => {
    const small = randomBytes(3000);
    const big = randomBytes(large);
    await expect(put(storage, 'c/small.bin', small)).resolves.toMatchObject({ size: small.length, digest: sha256(small), replacedBytes: 0 });
    await expect(put(storage, 'c/big.bin', big)).resolves.toMatchObject({ size: big.length, digest: sha256(big) });
    await put(storage, 'c/empty', Buffer.alloc(0));
    const read = await readAll(storage, 'c/big.bin');
    expect(read.data.equals(big)).toBe(true);
    expect(read.file).toMatchObject({ size: big.length, digest: sha256(big) });
    expect((await readAll(storage, 'c/empty')).data.length).toBe(0);
    await expect(storage.stat(n('c/big.bin'))).resolves.toMatchObject({ type: 'file', size: big.length, digest: sha256(big) });
    await expect(storage.stat(n('c'))).resolves.toMatchObject({ type: 'folder' });
    const listed = await storage.list('c', { limit: 10 });
    expect(listed.map((file) => [file.name, file.size, file.digest]).sort()).toEqual(
      [['c/big.bin', big.length, sha256(big)], ['c/empty', 0, sha256(Buffer.alloc(0))], ['c/small.bin', 3000, sha256(small)]].sort(),
    );
    await expect(failure(storage.list('c', { limit: 2 }))).resolves.toBe('TOO_LARGE');
    await expect(storage.sizeOf(n('c/small.bin'))).resolves.toBe(3000);
    await expect(storage.usage('c')).resolves.toBe(small.length + big.length);
  });

  test('a listing in pages (where the adapter pages) gives every file once, in a stable order, past the LIST limit', async () => {
    if (!storage.listsInPages) return;
    // Names that sort differently by path segment and by whole string ('a/b' and 'a.txt', 'a-z').
    const names = ['p/a.txt', 'p/a/b', 'p/a/c/d', 'p/a-z', 'p/b', 'p/a/c.e', 'p/z/1', 'p/z/2', 'p/zz', 'q/outside'];
    for (const name of names) await put(storage, name, Buffer.from(name));
    await expect(failure(storage.list('p', { limit: 3 }))).resolves.toBe('TOO_LARGE');
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10);
      const page = await storage.list('p', { limit: 3, page: { ...(after !== undefined && { after }) } });
      expect(page.length).toBeLessThanOrEqual(4);
      const shown = page.slice(0, 3);
      seen.push(...shown.map((file) => file.name));
      if (page.length <= 3) break;
      after = shown[shown.length - 1]!.name;
    }
    expect([...seen].sort()).toEqual(names.filter((name) => name.startsWith('p/')).sort());
    expect(new Set(seen).size).toBe(seen.length);
    // The same order when listed whole.
    expect((await storage.list('p', { limit: 100, page: {} })).map((file) => file.name)).toEqual(seen);
  });

  test('LIST FOLDERS shows every folder once (empty ones too), each before what it holds; SHALLOW one level (issue 19)', async () => {
    if (!storage.listsFolders) return;
    const files = ['f/a.txt', 'f/a/b', 'f/a/c/d', 'f/a-z', 'f/z/1', 'g/outside'];
    for (const name of files) await put(storage, name, Buffer.from(name));
    await storage.makeFolder(n('f/empty'));
    await storage.makeFolder(n('f/a/c/deep/er'));
    const shown = (entries: { name: string; folder?: true }[]) => entries.map((entry) => (entry.folder ? `${entry.name}/` : entry.name));
    const whole = await storage.list('f', { limit: 100, folders: true });
    expect([...shown(whole)].sort()).toEqual(['f/a.txt', 'f/a/', 'f/a/b', 'f/a/c/', 'f/a/c/d', 'f/a/c/deep/', 'f/a/c/deep/er/', 'f/a-z', 'f/empty/', 'f/z/', 'f/z/1'].sort());
    for (const entry of whole) if (entry.folder) expect(entry).toMatchObject({ size: 0 });
    // Without FOLDERS nothing changes (what older clients see).
    expect((await storage.list('f', { limit: 100 })).every((entry) => !entry.folder)).toBe(true);
    const oneLevel = await storage.list('f', { limit: 100, folders: true, shallow: true });
    expect([...shown(oneLevel)].sort()).toEqual(['f/a.txt', 'f/a/', 'f/a-z', 'f/empty/', 'f/z/'].sort());
    expect([...shown(await storage.list('f/a/c', { limit: 100, folders: true, shallow: true }))].sort()).toEqual(['f/a/c/d', 'f/a/c/deep/']);
    await expect(failure(storage.list('f', { limit: 10, folders: true }))).resolves.toBe('TOO_LARGE');
    if (!storage.listsInPages) return;
    // In pages of 2, going on after folder lines too: every entry once, folders before their contents.
    for (const shallow of [false, true]) {
      const seen: string[] = [];
      let after: { after: string; afterFolder?: boolean } | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThan(20);
        const page = await storage.list('f', { limit: 2, folders: true, shallow, page: after ?? {} });
        seen.push(...shown(page.slice(0, 2)));
        if (page.length <= 2) break;
        const last = page[1]!;
        after = { after: last.name, ...(last.folder && { afterFolder: true }) };
      }
      expect([...seen].sort()).toEqual(shown(shallow ? oneLevel : whole).sort());
      // The same order as one page of everything.
      expect(seen).toEqual(shown(await storage.list('f', { limit: 100, folders: true, shallow, page: {} })));
      if (!shallow) for (const name of seen) if (name.endsWith('/')) expect(seen.filter((other) => other.startsWith(name)).every((other) => seen.indexOf(other) >= seen.indexOf(name))).toBe(true);
    }
  });

  test('nothing is visible under the name until commit, and an abort leaves the old file', async () => {
    const old = randomBytes(100);
    await put(storage, 'v/file', old);
    const next = randomBytes(large);
    const staged = await storage.beginWrite(n('v/file'), { size: next.length, createOnly: false });
    await writeAll(staged.sink, next.subarray(0, next.length - 1));
    expect((await readAll(storage, 'v/file')).data.equals(old)).toBe(true);
    expect((await storage.list('v', { limit: 10 })).map((file) => file.size)).toEqual([100]);
    await staged.abort();
    expect((await readAll(storage, 'v/file')).data.equals(old)).toBe(true);
    const fresh = await storage.beginWrite(n('v/new'), { size: 10, createOnly: false });
    await writeAll(fresh.sink, randomBytes(5));
    await expect(failure(storage.stat(n('v/new')))).resolves.toBe('NOT_FOUND');
    await fresh.abort();
    await expect(failure(storage.openRead(n('v/new')))).resolves.toBe('NOT_FOUND');
  });

  test('create-only: EXISTS before the data, and exactly one of two racing commits wins', async () => {
    await put(storage, 'x/taken', randomBytes(10));
    await expect(failure(storage.beginWrite(n('x/taken'), { size: 1, createOnly: true }))).resolves.toBe('EXISTS');
    const [a, b] = [randomBytes(large), randomBytes(large)];
    const stagedA = await storage.beginWrite(n('x/race'), { size: a.length, createOnly: true });
    const stagedB = await storage.beginWrite(n('x/race'), { size: b.length, createOnly: true });
    await Promise.all([writeAll(stagedA.sink, a), writeAll(stagedB.sink, b)]);
    const outcomes = await Promise.all([stagedA.commit(verified(a)).then(() => 'A', (err: RxferError) => err.code), stagedB.commit(verified(b)).then(() => 'B', (err: RxferError) => err.code)]);
    expect(outcomes.filter((outcome) => outcome === 'EXISTS')).toHaveLength(1);
    const winner = outcomes.includes('A') ? a : b;
    expect((await readAll(storage, 'x/race')).data.equals(winner)).toBe(true);
  });

  test('a replace reports the bytes it replaced; a resumed read sends only what follows a matching prefix', async () => {
    const first = randomBytes(2 * MiB);
    await put(storage, 'r/file', first);
    const second = randomBytes(3 * MiB);
    await expect(put(storage, 'r/file', second)).resolves.toMatchObject({ replacedBytes: first.length });
    const match = await readAll(storage, 'r/file', { offset: MiB, digest: sha256(second.subarray(0, MiB)) });
    expect(match.offset).toBe(MiB);
    expect(match.data.equals(second.subarray(MiB))).toBe(true);
    const wrong = await readAll(storage, 'r/file', { offset: MiB, digest: sha256(first.subarray(0, MiB)) });
    expect(wrong.offset).toBe(0);
    expect(wrong.data.equals(second)).toBe(true);
  });

  test('DELETE, RENAME and MKDIR keep their rules', async () => {
    const data = randomBytes(1000);
    await put(storage, 'o/a/file', data);
    await expect(failure(storage.remove(n('o/a')))).resolves.toBe('NAME_CONFLICT');
    await put(storage, 'o/other', randomBytes(5));
    await expect(failure(storage.rename(n('o/a/file'), n('o/other')))).resolves.toBe('EXISTS');
    await storage.rename(n('o/a/file'), n('o/b/moved'));
    await expect(failure(storage.stat(n('o/a/file')))).resolves.toBe('NOT_FOUND');
    expect((await readAll(storage, 'o/b/moved')).data.equals(data)).toBe(true);
    await expect((await storage.stat(n('o/b/moved'))).digest).toBe(sha256(data));
    await storage.rename(n('o/b'), n('o/c'));
    expect((await readAll(storage, 'o/c/moved')).data.equals(data)).toBe(true);
    await expect(failure(storage.stat(n('o/b')))).resolves.toBe('NOT_FOUND');
    await storage.makeFolder(n('o/empty'));
    await expect(failure(storage.makeFolder(n('o/empty')))).resolves.toBe('EXISTS');
    await expect(failure(storage.makeFolder(n('o/other')))).resolves.toBe('EXISTS');
    await expect(storage.stat(n('o/empty'))).resolves.toMatchObject({ type: 'folder' });
    await expect(storage.remove(n('o/empty'))).resolves.toBe(0);
    await expect(storage.remove(n('o/c/moved'))).resolves.toBe(1000);
    await expect(failure(storage.remove(n('o/c/moved')))).resolves.toBe('NOT_FOUND');
  });

  test('an interrupted large upload is kept, proven and resumed (where the adapter keeps any)', async () => {
    if (storage.resumableFromBytes === undefined) return;
    const data = randomBytes(Math.max(large, storage.resumableFromBytes) + 3 * MiB);
    const cut = data.length - 2 * MiB;
    const staged = await storage.beginWrite(n('k/big'), { size: data.length, createOnly: false });
    await writeAll(staged.sink, data.subarray(0, cut));
    const kept = await staged.suspend();
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(cut);
    await expect(storage.partialUpload!(n('k/big'))).resolves.toEqual({ bytes: kept, digest: sha256(data.subarray(0, kept)) });
    const dropped: number[] = [];
    const onKeptDropped = (bytes: number) => void dropped.push(bytes);
    await expect(failure(storage.beginWrite(n('k/big'), { size: data.length, createOnly: false, resume: { offset: kept, digest: sha256(randomBytes(8)) }, onKeptDropped }))).resolves.toBe(
      'RESUME_MISMATCH',
    );
    // The quota is told what went.
    expect(dropped).toEqual([kept]);
    // A mismatch drops what was kept: the next upload starts from 0.
    await expect(storage.partialUpload!(n('k/big'))).resolves.toBeUndefined();

    const again = await storage.beginWrite(n('k/big'), { size: data.length, createOnly: false });
    await writeAll(again.sink, data.subarray(0, cut));
    const keptAgain = await again.suspend();
    const resumed: StagedWrite = await storage.beginWrite(n('k/big'), { size: data.length, createOnly: false, resume: { offset: keptAgain, digest: sha256(data.subarray(0, keptAgain)) } });
    expect(resumed.resumed?.offset).toBe(keptAgain);
    const rest = data.subarray(keptAgain);
    expect(resumed.resumed!.hash.update(rest).hex()).toBe(sha256(data));
    await writeAll(resumed.sink, rest);
    await resumed.commit(verified(data));
    expect((await readAll(storage, 'k/big')).data.equals(data)).toBe(true);
    await expect(storage.partialUpload!(n('k/big'))).resolves.toBeUndefined();

    // A plain upload of the name starts over: what was kept is gone (PROTOCOL.md).
    const third = await storage.beginWrite(n('k/big'), { size: data.length, createOnly: false });
    await writeAll(third.sink, data.subarray(0, cut));
    expect(await third.suspend()).toBeGreaterThan(0);
    await put(storage, 'k/big', randomBytes(10));
    await expect(storage.partialUpload!(n('k/big'))).resolves.toBeUndefined();
  });

  test('kept uploads expire', async () => {
    if (storage.resumableFromBytes === undefined) return;
    const data = randomBytes(storage.resumableFromBytes + 2 * MiB);
    const staged = await storage.beginWrite(n('e/big'), { size: data.length + MiB, createOnly: false });
    await writeAll(staged.sink, data);
    const kept = await staged.suspend();
    expect(kept).toBeGreaterThan(0);
    await expect(storage.expirePartialUploads!(60_000)).resolves.toBe(0);
    await expect(storage.expirePartialUploads!(0)).resolves.toBeGreaterThanOrEqual(kept);
    await expect(storage.partialUpload!(n('e/big'))).resolves.toBeUndefined();
  });
};
