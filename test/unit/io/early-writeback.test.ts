import { createWriteStream, fdatasync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeBackEarly } from '../../../src/io/early-writeback';

const KIB = 1024;

describe('writeBackEarly', () => {
  let folder: string;
  beforeEach(() => (folder = mkdtempSync(join(tmpdir(), 'rxfer-writeback-'))));
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  /** Writes `pieces` through a real fs stream with early writeback every `every` bytes; returns the syncs seen. */
  const writeThrough = async (pieces: Buffer[], every: number) => {
    const path = join(folder, 'staged.bin');
    const fd = openSync(path, 'w');
    const sink = createWriteStream('', { fd, autoClose: false, highWaterMark: 64 * KIB });
    const syncs: { writtenBefore: number; overlapping: boolean }[] = [];
    let inFlight = 0;
    // The real fdatasync, watched: when it is asked for, and whether another one was still running.
    const watched = ((syncFd: number, done: (err: NodeJS.ErrnoException | null) => void) => {
      syncs.push({ writtenBefore: sink.bytesWritten, overlapping: inFlight > 0 });
      inFlight++;
      fdatasync(syncFd, (err) => {
        inFlight--;
        done(err);
      });
    }) as typeof fdatasync;
    writeBackEarly(sink, fd, every, watched);
    for (const piece of pieces) if (!sink.write(piece)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
    await new Promise<void>((resolve) => sink.end(resolve));
    while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    return { path, syncs };
  };

  test('asks for writeback after every `every` bytes written, one at a time, and the file holds exactly what was written', async () => {
    const pieces = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * KIB + i, i));
    const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
    const { path, syncs } = await writeThrough(pieces, 512 * KIB);
    expect(readFileSync(path).equals(Buffer.concat(pieces))).toBe(true);
    // ≈ 4 MiB in 512 KiB steps: never more than one a step, never two at once, none before 512 KiB.
    expect(syncs.length).toBeGreaterThanOrEqual(1);
    expect(syncs.length).toBeLessThanOrEqual(Math.floor(total / (512 * KIB)));
    expect(syncs.every((sync) => !sync.overlapping)).toBe(true);
    expect(syncs[0]!.writtenBefore).toBeGreaterThanOrEqual(512 * KIB);
  });

  test('a file smaller than `every` is never synced early (its commit does it)', async () => {
    const { syncs } = await writeThrough([Buffer.alloc(300 * KIB, 7)], 512 * KIB);
    expect(syncs).toEqual([]);
  });
});
