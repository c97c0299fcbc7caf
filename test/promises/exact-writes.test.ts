import fs = require('node:fs');
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactWrites } from '../../src/io/exact-writes';

/**
 * Promise (issue 14, exact-writes.ts): a staging file holds exactly the bytes written, in place, even
 * when the disk takes a writev or a write only in part (a disk filling up). Node 20's own retry
 * writes the rest at the wrong offset: a hole of zeros, the right size, and neither the digest (taken
 * from the socket) nor the size check sees it. Real files; `fs.writev`/`fs.write` wrapped to take
 * only part of the bytes (the part they take is really written), as a short write does.
 */
type Short = (length: number, call: number) => number;

let dir: string;
const realWritev = fs.writev;
const realWrite = fs.write;
/** How many bytes the next calls take of what they are given (undefined: all). */
let writevTakes: Short | undefined;
let writeTakes: Short | undefined;
let writevCalls = 0;
/** What a write that fails (a take of -1) fails with. */
const eio = Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
let writeCalls = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rxfer-exact-writes-'));
  (fs as { writev: unknown }).writev = (fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null, callback: (err: NodeJS.ErrnoException | null, written: number, buffers: NodeJS.ArrayBufferView[]) => void) => {
    const call = writevCalls++;
    const total = buffers.reduce((sum, b) => sum + b.byteLength, 0);
    const take = writevTakes ? writevTakes(total, call) : total;
    if (take < 0) return void setImmediate(() => callback(eio, 0, buffers));
    const all = Buffer.concat(buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))).subarray(0, take);
    realWritev(fd, [all], position, (err, written) => callback(err, written, buffers));
  };
  (fs as { write: unknown }).write = (fd: number, data: Buffer, offset: number, length: number, position: number, callback: (err: NodeJS.ErrnoException | null, written: number) => void) => {
    const call = writeCalls++;
    const take = writeTakes ? writeTakes(length, call) : length;
    if (take < 0) return void setImmediate(() => callback(eio, 0));
    if (take === 0) return void setImmediate(() => callback(null, 0));
    realWrite(fd, data, offset, take, position, (err, written) => callback(err, written));
  };
});
afterAll(async () => {
  (fs as { writev: unknown }).writev = realWritev;
  (fs as { write: unknown }).write = realWrite;
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  writevTakes = writeTakes = undefined;
  writevCalls = writeCalls = 0;
});

/** Writes `buffers` at `position` of a fresh file through exactWrites.writev; the file and the callback's values. */
const writevAt = async (buffers: Buffer[], position: number | null, prefix = Buffer.alloc(0)) => {
  const path = join(dir, `f-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(path, prefix);
  const fd = fs.openSync(path, 'r+');
  try {
    const [err, written] = await new Promise<[NodeJS.ErrnoException | null, number]>((resolve) => exactWrites.writev(fd, buffers, position, (e, n) => resolve([e, n])));
    return { err, written, file: await readFile(path) };
  } finally {
    fs.closeSync(fd);
  }
};

describe('exactWrites.writev: a short write is finished in place', () => {
  const parts = [randomBytes(1000), randomBytes(3000), randomBytes(5000)];
  const all = Buffer.concat(parts);

  test('a whole writev: the bytes, at the position, all reported', async () => {
    const prefix = randomBytes(700);
    const { err, written, file } = await writevAt(parts, 700, prefix);
    expect(err).toBeNull();
    expect(written).toBe(all.length);
    expect(file.equals(Buffer.concat([prefix, all]))).toBe(true);
  });

  test.each([1, 999, 1000, 1001, 4000, 8999])('a writev cut short after %i bytes: the rest follows right after, no hole, all reported', async (cut) => {
    writevTakes = (length, call) => (call === 0 ? cut : length);
    const prefix = randomBytes(300);
    const { err, written, file } = await writevAt(parts, 300, prefix);
    expect(err).toBeNull();
    expect(written).toBe(all.length);
    expect(file.length).toBe(300 + all.length);
    expect(file.equals(Buffer.concat([prefix, all]))).toBe(true);
  });

  test('the rest itself taken in small pieces: still every byte in place', async () => {
    writevTakes = () => 10;
    writeTakes = (length) => Math.min(length, 777);
    const { err, written, file } = await writevAt(parts, 0);
    expect(err).toBeNull();
    expect(written).toBe(all.length);
    expect(file.equals(all)).toBe(true);
  });

  test('a write that takes nothing now and then (but not for good) is retried until all is written', async () => {
    writevTakes = () => 100;
    writeTakes = (length, call) => (call % 2 === 0 ? 0 : Math.min(length, 500));
    const { err, file } = await writevAt(parts, 0);
    expect(err).toBeNull();
    expect(file.equals(all)).toBe(true);
  });

  test('a file system that takes no bytes, again and again: EIO, and only what was written is reported', async () => {
    writevTakes = () => 2500;
    writeTakes = () => 0;
    const { err, written } = await writevAt(parts, 0);
    expect(err).toMatchObject({ code: 'EIO', message: 'the file system took no bytes at offset 2500' });
    expect(written).toBe(2500);
    // It gives up after a bounded number of tries: 6 empty writes, not an endless loop.
    expect(writeCalls).toBe(6);
  });

  test('a write error in the rest: that error, and only what was written is reported', async () => {
    writevTakes = () => 4000;
    writeTakes = () => -1;
    const { err, written } = await writevAt(parts, 0);
    expect(err).toBe(eio);
    expect(written).toBe(4000);
  });

  test('a writev that fails: its error reaches the caller, nothing is written behind its back', async () => {
    writevTakes = () => -1;
    const { err, written, file } = await writevAt(parts, 0);
    expect(err).toBe(eio);
    expect(written).toBe(0);
    expect(writeCalls).toBe(0);
    expect(file.length).toBe(0);
  });

  test('without a position (the file offset moves by itself), a short writev is handed back to the caller as is', async () => {
    writevTakes = (length, call) => (call === 0 ? 1234 : length);
    const { err, written } = await writevAt(parts, null);
    expect(err).toBeNull();
    expect(written).toBe(1234);
    expect(writeCalls).toBe(0);
  });
});
