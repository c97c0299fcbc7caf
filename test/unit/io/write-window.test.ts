import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { WRITE_WINDOWS_TOTAL_BYTES, WRITE_WINDOW_HIGH_BYTES, WriteWindow, bytesWaitingToBeWritten } from '../../../src/io/write-window';

const KIB = 1024;
const chunk = (fill: number, bytes = 64 * KIB): Buffer => Buffer.alloc(bytes, fill);

/**
 * A sink that writes batches (like fs streams, which write all queued chunks in one writev) and
 * completes each batch only when the test says so: the test plays the thread pool.
 */
class ManualBatchSink extends Writable {
  readonly batches: Buffer[][] = [];
  private finishBatch: (() => void) | undefined;

  constructor() {
    super({ highWaterMark: 64 * KIB });
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error) => void): void {
    this.batches.push(chunks.map((entry) => entry.chunk));
    this.finishBatch = () => done();
  }

  override _write(data: Buffer, _encoding: BufferEncoding, done: (err?: Error) => void): void {
    this._writev([{ chunk: data }], done);
  }

  /** Completes the batch being written; the next (everything queued meanwhile) starts at once. */
  completeBatch(): void {
    const finish = this.finishBatch;
    this.finishBatch = undefined;
    finish?.();
  }
}

describe('WriteWindow', () => {
  test('asks to hold at the high mark, and lets go when the batch in flight completes, not when all is written', () => {
    const sink = new ManualBatchSink();
    const window = new WriteWindow(sink, 512 * KIB);
    // The first chunk starts a batch at once; the next ones queue behind it.
    expect(window.write(chunk(1))).toBe(true);
    for (let i = 2; i <= 7; i++) expect(window.write(chunk(i))).toBe(true);
    expect(window.write(chunk(8))).toBe(false); // 512 KiB waiting
    let resumed = false;
    window.onRoom(() => (resumed = true));
    expect(resumed).toBe(false);
    // The first batch (one chunk) completes: 448 KiB still wait, above the low mark.
    sink.completeBatch();
    expect(resumed).toBe(false);
    // The second batch (the seven queued chunks) is being written: completing it leaves 0.
    expect(sink.batches[1]).toHaveLength(7);
    window.write(chunk(9)); // queued behind the batch in flight
    sink.completeBatch();
    expect(resumed).toBe(true);
    // Room was given back while chunk 9 was still waiting: a fully drained buffer is not required.
    expect(sink.writableLength).toBe(64 * KIB);
    expect(bytesWaitingToBeWritten()).toBe(64 * KIB);
    sink.destroy();
  });

  test('calls back at once when there is room already', () => {
    const sink = new ManualBatchSink();
    const window = new WriteWindow(sink, 512 * KIB);
    window.write(chunk(1));
    let resumed = false;
    window.onRoom(() => (resumed = true));
    expect(resumed).toBe(true);
    sink.destroy();
  });

  test('lets a waiting feeder go when the sink fails, so that owed data can still be read and dropped', () => {
    const sink = new ManualBatchSink();
    sink.on('error', () => undefined);
    const window = new WriteWindow(sink, 128 * KIB);
    window.write(chunk(1));
    window.write(chunk(2));
    expect(window.write(chunk(3))).toBe(false);
    let resumed = false;
    window.onRoom(() => (resumed = true));
    sink.destroy(new Error('disk full'));
    return new Promise<void>((done) =>
      setImmediate(() => {
        expect(resumed).toBe(true);
        done();
      }),
    );
  });

  test('windows together hold at the process total, and any window making room lets the others go', () => {
    expect(bytesWaitingToBeWritten()).toBe(0);
    const sinks = Array.from({ length: 5 }, () => new ManualBatchSink());
    const windows = sinks.map((sink) => new WriteWindow(sink));
    // Four windows let 4 MiB wait each (the first chunk of each is in flight): 16 MiB together.
    const fill = (window: WriteWindow) => Array.from({ length: WRITE_WINDOW_HIGH_BYTES / (64 * KIB) }, (_, i) => window.write(chunk(i)));
    for (const window of windows.slice(0, 3)) expect(fill(window).slice(0, -1).every(Boolean)).toBe(true);
    const fourth = fill(windows[3]!);
    expect(fourth.at(-1)).toBe(false);
    expect(bytesWaitingToBeWritten()).toBe(WRITE_WINDOWS_TOTAL_BYTES);
    // The fifth has nothing waiting of its own, but the total is reached: it holds at once.
    expect(windows[4]!.write(chunk(1))).toBe(false);
    let fifthResumed = false;
    windows[4]!.onRoom(() => (fifthResumed = true));
    // Another window's first batch (one chunk) completes: not yet half a window of room.
    sinks[0]!.completeBatch();
    expect(fifthResumed).toBe(false);
    // Its second batch (the rest) completes: 4 MiB are free, and the fifth window goes on.
    sinks[0]!.completeBatch();
    expect(fifthResumed).toBe(true);
    // Released windows' bytes count until written; sinks that end or fail count no more.
    windows.forEach((window) => window.release());
    expect(bytesWaitingToBeWritten()).toBeGreaterThan(0);
    sinks.forEach((sink) => sink.destroy());
    return new Promise<void>((done) =>
      setImmediate(() => {
        expect(bytesWaitingToBeWritten()).toBe(0);
        done();
      }),
    );
  });

  test('a real file written through the window holds exactly the bytes given, in order', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'rxfer-window-'));
    try {
      const path = join(folder, 'out.bin');
      const sink = createWriteStream(path, { highWaterMark: 64 * KIB });
      const window = new WriteWindow(sink, 256 * KIB);
      const pieces = Array.from({ length: 40 }, (_, i) => chunk(i, 50 * KIB + i));
      for (const piece of pieces) {
        if (!window.write(piece)) await new Promise<void>((resume) => window.onRoom(resume));
        expect(sink.writableLength).toBeLessThanOrEqual(256 * KIB + 64 * KIB);
      }
      await new Promise<void>((done) => sink.end(done));
      expect(readFileSync(path).equals(Buffer.concat(pieces))).toBe(true);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
