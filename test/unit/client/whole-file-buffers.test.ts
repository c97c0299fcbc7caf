import { recycleWholeFileBuffer, wholeFileBuffer } from '../../../src/client/whole-file-buffers';

const CAPACITY = 1024 * 1024 + 1;

describe('whole-file buffers', () => {
  test('a large buffer given back is handed out again (the same memory), a small one is never pooled', () => {
    const first = wholeFileBuffer(512 * 1024, CAPACITY);
    expect(first.length).toBe(512 * 1024);
    recycleWholeFileBuffer(first.subarray(0, 100));
    const second = wholeFileBuffer(CAPACITY, CAPACITY);
    expect(second.buffer).toBe(first.buffer);
    expect(second.length).toBe(CAPACITY);

    const small = wholeFileBuffer(4096, CAPACITY);
    recycleWholeFileBuffer(small);
    expect(wholeFileBuffer(200 * 1024, CAPACITY).buffer).not.toBe(small.buffer);
  });

  test('a buffer still lent out is never handed out twice, and one given back twice is pooled once', () => {
    const a = wholeFileBuffer(100 * 1024, CAPACITY);
    const b = wholeFileBuffer(100 * 1024, CAPACITY);
    expect(b.buffer).not.toBe(a.buffer);
    recycleWholeFileBuffer(a);
    recycleWholeFileBuffer(a);
    const c = wholeFileBuffer(100 * 1024, CAPACITY);
    const d = wholeFileBuffer(100 * 1024, CAPACITY);
    expect(c.buffer).toBe(a.buffer);
    expect(d.buffer).not.toBe(a.buffer);
  });

  test('a buffer the pool never lent is left alone', () => {
    const own = Buffer.alloc(CAPACITY);
    recycleWholeFileBuffer(own);
    expect(wholeFileBuffer(CAPACITY, CAPACITY).buffer).not.toBe(own.buffer);
  });
});
