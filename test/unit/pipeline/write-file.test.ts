import '../session/support/fail-fast';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { QuotaReservation } from '../../../src/auth/quota-ledger';
import { notDurable } from '../../../src/storage/storage-errors';
import { RxferError } from '../../../src/errors/rxfer-error';
import { WriteFileStage } from '../../../src/pipeline/stages/write-file.stage';
import type { RemoteName } from '../../../src/protocol/remote-name';
import type { SessionEvent } from '../../../src/session/session-event';
import type { Transfer } from '../../../src/session/transfer';
import type { StagedWrite } from '../../../src/storage/storage-adapter';
import { captureLogs, fakeSession, settlesNow } from '../session/support/fake-session';
import { flush, runStage } from './support/run-stage';

const sha = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

/** A staging file in memory; `slow` holds each write's callback until `drain()`. */
const fakeStaged = (options: { slow?: boolean; commit?: () => Promise<unknown>; abort?: () => Promise<void> } = {}) => {
  const written: Buffer[] = [];
  const callbacks: Array<() => void> = [];
  const sink = new Writable({
    highWaterMark: 1 << 30,
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      if (options.slow) callbacks.push(() => callback());
      else callback();
    },
  });
  const commits: unknown[] = [];
  let aborts = 0;
  const staged = {
    sink,
    commit: (verified: unknown) => {
      commits.push(verified);
      return options.commit ? options.commit() : Promise.resolve({ name: 'f', size: 3, digest: sha('abc'), mtimeMs: 1, replacedBytes: 11 });
    },
    abort: () => {
      aborts++;
      return options.abort ? options.abort() : Promise.resolve();
    },
    suspend: () => Promise.resolve(0),
  } as unknown as StagedWrite;
  return { staged, sink, written, commits, aborts: () => aborts, drain: () => callbacks.splice(0).forEach((callback) => callback()) };
};

const setup = (limits = {}) => {
  const { logger, lines } = captureLogs();
  const ctx = fakeSession({ logger, limits });
  const run = runStage(new WriteFileStage(), ctx);
  const committed: number[] = [];
  const aborted: number[] = [];
  const upload = (size: number, staged?: StagedWrite, name = 'f') => {
    const transfer = ctx.beginTransfer({ verb: 'UPLOAD', size });
    transfer.name = name as RemoteName;
    transfer.staged = staged;
    transfer.quota = { committed: (bytes: number) => void committed.push(bytes), aborted: (kept = 0) => void aborted.push(kept), change: <T>(work: () => Promise<T>) => work() } as unknown as QuotaReservation;
    return transfer;
  };
  /** What accumulate-data does, then the data event. */
  const data = (transfer: Transfer, text: string | Buffer) => {
    const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
    transfer.hash!.update(bytes);
    transfer.received += bytes.length;
    run.input.next({ type: 'data', transfer, bytes });
  };
  const end = (transfer: Transfer, digest = transfer.hash!.hex(), hash: 'sha256' | 'blake3' = 'sha256') => run.input.next({ type: 'dataEnd', transfer, trailer: { hash, digest } });
  const outcome = async (index = run.out.length - 1) => {
    const event = run.out[index] as Extract<SessionEvent, { type: 'pending' }>;
    expect(event.type).toBe('pending');
    return event.outcome;
  };
  return { ctx, lines, committed, aborted, upload, data, end, outcome, ...run };
};

describe('WriteFileStage', () => {
  test('chunks go to the staging file; a matching trailer commits the verified size and digest', async () => {
    const { upload, data, end, out, outcome, committed } = setup();
    const staging = fakeStaged();
    const transfer = upload(3, staging.staged);
    data(transfer, 'ab');
    data(transfer, 'c');
    expect(out).toEqual([]);
    expect(Buffer.concat(staging.written).toString()).toBe('abc');
    end(transfer);
    const events = await outcome();
    expect(events).toEqual([{ type: 'committed', transfer, file: { name: 'f', size: 3, digest: sha('abc'), mtimeMs: 1, replacedBytes: 11 } }]);
    expect(staging.commits).toEqual([{ size: 3, digest: sha('abc'), hash: 'sha256' }]);
    expect(committed).toEqual([11]);
    expect(transfer.staged).toBeUndefined();
    expect(staging.aborts()).toBe(0);
  });

  test('a release while the commit runs (the connection reset) leaves the quota to the commit: stored, so counted', async () => {
    const { upload, data, end, outcome, committed, aborted } = setup();
    let finishCommit!: () => void;
    const staging = fakeStaged();
    const held = { ...staging.staged, commit: (verified: unknown) => new Promise((resolve) => (finishCommit = () => resolve(staging.staged.commit(verified as never)))) } as unknown as StagedWrite;
    const transfer = upload(3, held);
    data(transfer, 'abc');
    end(transfer);
    const result = outcome();
    await transfer.release();
    expect(aborted).toEqual([]);
    finishCommit();
    expect((await result)[0]?.type).toBe('committed');
    expect(committed).toEqual([11]);
    expect(aborted).toEqual([]);
  });

  test('a commit that fails settles the reservation as nothing stored, even after a release', async () => {
    const { upload, data, end, outcome, committed, aborted } = setup();
    const transfer = upload(3, fakeStaged().staged);
    data(transfer, 'abc');
    end(transfer, sha('abd'));
    const result = outcome();
    await transfer.release();
    expect((await result)[0]?.type).toBe('refused');
    expect(aborted).toEqual([0]);
    expect(committed).toEqual([]);
  });

  test('a commit answered NOT_DURABLE (in place, its folder not synced) is refused with that error, and counted as stored', async () => {
    const { upload, data, end, outcome, committed, aborted } = setup();
    const unsynced = notDurable(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }), 'f is stored', { replacedBytes: 7 });
    const transfer = upload(3, fakeStaged({ commit: () => Promise.reject(unsynced) }).staged);
    data(transfer, 'abc');
    end(transfer);
    const [event] = await outcome();
    expect(event).toMatchObject({ type: 'refused', error: { code: 'NOT_DURABLE', message: unsynced.message } });
    expect(committed).toEqual([7]);
    expect(aborted).toEqual([]);
  });

  test('an upload with no quota reservation (a user without a quota) commits', async () => {
    const { upload, data, end, outcome } = setup();
    const transfer = upload(3, fakeStaged().staged);
    transfer.quota = undefined;
    data(transfer, 'abc');
    end(transfer);
    expect((await outcome())[0]?.type).toBe('committed');
  });

  test('a refused upload with no quota reservation (a user without a quota) is refused, nothing more', async () => {
    const { upload, data, end, outcome } = setup();
    const transfer = upload(3, fakeStaged().staged);
    transfer.quota = undefined;
    data(transfer, 'abc');
    end(transfer, sha('abd'));
    expect((await outcome())[0]?.type).toBe('refused');
  });

  test('other events pass', () => {
    const { input, out } = setup();
    const event: SessionEvent = { type: 'shutdown' };
    input.next(event);
    expect(out).toEqual([event]);
  });

  test("a refused upload's data is dropped and its end commits nothing", () => {
    const { upload, data, end, out, state } = setup();
    const transfer = upload(1);
    transfer.refusal = new RxferError('FORBIDDEN', 'no');
    data(transfer, 'x');
    end(transfer);
    expect(out).toEqual([]);
    expect(state.error).toBeUndefined();
  });

  test('a digest that does not match: CHECKSUM_MISMATCH with the real numbers, the staging data discarded', async () => {
    const { upload, data, end, outcome } = setup();
    const staging = fakeStaged();
    const transfer = upload(3, staging.staged);
    data(transfer, 'abc');
    const wrong = sha('abd');
    end(transfer, wrong);
    const [event] = await outcome();
    expect(event).toEqual({ type: 'refused', transfer, error: expect.any(RxferError) });
    const error = (event as { error: RxferError }).error;
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.message).toBe(`the 3 bytes received for f hash to ${sha('abc')}, not ${wrong} as declared (SHA256); nothing stored`);
    expect(error.detail).toEqual({ received: 3, computed: sha('abc'), declared: wrong });
    expect(staging.commits).toEqual([]);
    expect(staging.aborts()).toBe(1);
  });

  test('a trailer in another algorithm than the connection verifies with is refused, saying which', async () => {
    const { upload, data, end, outcome } = setup();
    const staging = fakeStaged();
    const transfer = upload(3, staging.staged);
    data(transfer, 'abc');
    end(transfer, sha('abc'), 'blake3');
    const [event] = await outcome();
    expect((event as { error: RxferError }).error.code).toBe('CHECKSUM_MISMATCH');
    expect((event as { error: RxferError }).error.message).toBe(
      'the trailer of f gives a BLAKE3 digest, but this connection verifies with SHA256 (send HASH BLAKE3 before the request); nothing stored',
    );
    expect(staging.commits).toEqual([]);
  });

  test('fewer bytes than declared never commit', async () => {
    const { upload, data, end, outcome } = setup();
    const staging = fakeStaged();
    const transfer = upload(3, staging.staged);
    data(transfer, 'ab');
    end(transfer);
    const [event] = await outcome();
    expect((event as { error: RxferError }).error.message).toBe('received 2 bytes of a declared 3');
    expect((event as { error: RxferError }).error.code).toBe('INTERNAL');
    expect(staging.commits).toEqual([]);
  });

  test('a staging file that failed mid-data: the rest is read and dropped, the upload refused with the storage code', async () => {
    const { upload, data, end, outcome, out } = setup();
    const staging = fakeStaged();
    const transfer = upload(3, staging.staged);
    data(transfer, 'a');
    staging.sink.destroy(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    data(transfer, 'bc');
    expect(Buffer.concat(staging.written).toString()).toBe('a');
    expect(transfer.failure?.code).toBe('NO_SPACE');
    expect(transfer.failure?.message).toBe('no space left to store f');
    const first = transfer.failure;
    data(transfer, 'more');
    expect(transfer.failure).toBe(first);
    expect(out).toEqual([]);
    end(transfer);
    const [event] = await outcome();
    expect((event as { error: RxferError }).error).toBe(transfer.failure);
    expect(staging.commits).toEqual([]);
    expect(staging.aborts()).toBe(1);
  });

  // Found by mutation testing (issue 18): storageError(null) used to throw a TypeError here, which
  // ended the whole session as INTERNAL instead of failing this one upload.
  test('a staging file destroyed without an error fails the upload too; nothing more is written', async () => {
    const { upload, data, state } = setup();
    const staging = fakeStaged();
    const transfer = upload(3, staging.staged);
    staging.sink.destroy();
    data(transfer, 'a');
    expect(state.error).toBeUndefined();
    expect(transfer.failure?.code).toBe('STORAGE_FAILED');
    const first = transfer.failure;
    data(transfer, 'b');
    expect(transfer.failure).toBe(first);
    expect(staging.written).toEqual([]);
  });

  test("a commit that fails without a storage code: STORAGE_FAILED, in the user's names", async () => {
    const { upload, data, end, outcome } = setup();
    const staging = fakeStaged({ commit: () => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })) });
    const transfer = upload(3, staging.staged, 'alice/f');
    transfer.user = { name: 'alice', role: 'write', root: 'alice' };
    data(transfer, 'abc');
    end(transfer);
    const [event] = await outcome();
    expect((event as { error: RxferError }).error.code).toBe('STORAGE_FAILED');
    expect((event as { error: RxferError }).error.message).toBe('cannot store f: EIO (i/o error)');
    expect(staging.aborts()).toBe(1);
  });

  test('an abort that fails is logged; the outcome is still the refusal', async () => {
    const { upload, data, end, outcome, lines } = setup();
    const staging = fakeStaged({ abort: () => Promise.reject(new Error('unlink failed')) });
    const transfer = upload(3, staging.staged);
    data(transfer, 'abd');
    end(transfer, sha('abc'));
    const [event] = await outcome();
    expect(event?.type).toBe('refused');
    expect(lines.find((line) => line.msg === 'Could not discard the staging data of f')).toMatchObject({ level: 40, err: { message: 'unlink failed' } });
  });

  test('the discard is awaited before the refusal, unless storage hung', async () => {
    let finishAbort!: () => void;
    const abort = () => new Promise<void>((resolve) => (finishAbort = resolve));
    const { upload, data, end, outcome } = setup();
    const staging = fakeStaged({ abort });
    const transfer = upload(3, staging.staged);
    data(transfer, 'abd');
    end(transfer, sha('abc'));
    const pending = outcome();
    expect(await settlesNow(pending)).toBe(false);
    finishAbort();
    expect(await settlesNow(pending)).toBe(true);

    const hung = fakeStaged({ abort: () => new Promise<void>(() => undefined) });
    const other = upload(3, hung.staged, 'g');
    other.storageHung = true;
    data(other, 'abd');
    end(other, sha('abc'));
    expect(await settlesNow(outcome())).toBe(true);
  });

  test('a commit cut by the storage deadline marks the upload hung and does not wait for its discard', async () => {
    jest.useFakeTimers();
    try {
      const { upload, data, end, outcome } = setup({ stallTimeoutMs: 500 });
      const staging = fakeStaged({ commit: () => new Promise(() => undefined), abort: () => new Promise<void>(() => undefined) });
      const transfer = upload(3, staging.staged);
      data(transfer, 'abc');
      end(transfer);
      const pending = outcome();
      await jest.advanceTimersByTimeAsync(500);
      const [event] = await pending;
      expect((event as { error: RxferError }).error.code).toBe('STORAGE_FAILED');
      expect(transfer.storageHung).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  test('a commit cut by the storage deadline is counted by its late outcome, never as aborted before it', async () => {
    jest.useFakeTimers();
    try {
      const { upload, data, end, outcome, committed, aborted } = setup({ stallTimeoutMs: 500 });
      let lateCommit!: (file: unknown) => void;
      const staging = fakeStaged({ commit: () => new Promise((resolve) => (lateCommit = resolve)) });
      const transfer = upload(3, staging.staged);
      data(transfer, 'abc');
      end(transfer);
      const pending = outcome();
      await jest.advanceTimersByTimeAsync(500);
      expect(((await pending)[0] as { error: RxferError }).error.code).toBe('STORAGE_FAILED');
      await transfer.release();
      expect(aborted).toEqual([]);
      lateCommit({ name: 'f', size: 3, digest: sha('abc'), mtimeMs: 1, replacedBytes: 5 });
      await jest.advanceTimersByTimeAsync(0);
      expect(committed).toEqual([5]);
      expect(aborted).toEqual([]);
    } finally {
      jest.useRealTimers();
    }
  });

  test('a commit that fails settles the reservation once, as nothing stored', async () => {
    const { upload, data, end, outcome, committed, aborted } = setup();
    const transfer = upload(3, fakeStaged({ commit: () => Promise.reject(Object.assign(new Error('EIO: fsync'), { code: 'EIO' })) }).staged);
    data(transfer, 'abc');
    end(transfer);
    expect((await outcome())[0]?.type).toBe('refused');
    expect(aborted).toEqual([0]);
    expect(committed).toEqual([]);
  });

  test('at most 16 commits in flight: the 16th holds input until one finishes', async () => {
    const { ctx, upload, end, out } = setup();
    const finishes: Array<() => void> = [];
    const commit = () => new Promise((resolve) => finishes.push(() => resolve({ name: 'f', size: 0, digest: sha(''), mtimeMs: 1, replacedBytes: 0 })));
    for (let i = 0; i < 15; i++) end(upload(0, fakeStaged({ commit }).staged));
    expect(ctx.commitsInFlight).toBe(15);
    expect(ctx.flow.paused).toBe(false);
    end(upload(0, fakeStaged({ commit }).staged));
    expect(ctx.commitsInFlight).toBe(16);
    expect(ctx.flow.paused).toBe(true);
    finishes.shift()!();
    await flush();
    expect(ctx.commitsInFlight).toBe(15);
    expect(ctx.flow.paused).toBe(true); // the 16th's hold is its own: it ends with it
    finishes.splice(0).forEach((finish) => finish());
    await flush();
    expect(ctx.commitsInFlight).toBe(0);
    expect(ctx.flow.paused).toBe(false);
    expect(out).toHaveLength(16);
  });

  test('a staging file that takes no more holds input until it has room', async () => {
    const { ctx, upload, data } = setup();
    const staging = fakeStaged({ slow: true });
    const transfer = upload(8 * 1024 * 1024, staging.staged);
    data(transfer, Buffer.alloc(5 * 1024 * 1024));
    expect(ctx.flow.paused).toBe(true);
    staging.drain();
    await flush();
    expect(ctx.flow.paused).toBe(false);
    expect(transfer.failure).toBeUndefined();
    transfer.writeWindow?.release();
  });

  test('a staging file that takes nothing for a stall window fails the upload and lets input go', () => {
    jest.useFakeTimers();
    try {
      const { ctx, upload, data } = setup({ stallTimeoutMs: 500 });
      const staging = fakeStaged({ slow: true });
      const transfer = upload(8 * 1024 * 1024, staging.staged);
      data(transfer, Buffer.alloc(5 * 1024 * 1024));
      jest.advanceTimersByTime(499);
      expect(ctx.flow.paused).toBe(true);
      jest.advanceTimersByTime(1);
      expect(ctx.flow.paused).toBe(false);
      expect(transfer.storageHung).toBe(true);
      expect(transfer.failure?.code).toBe('STORAGE_FAILED');
      expect(transfer.failure?.message).toBe('storage took none of f for 500 ms; nothing stored');
      expect(transfer.failure?.detail).toEqual({ stallTimeoutMs: 500 });
      const written = staging.written.length;
      data(transfer, 'more'); // owed, read, dropped
      expect(staging.written).toHaveLength(written);
      staging.drain();
      transfer.writeWindow?.release();
    } finally {
      jest.useRealTimers();
    }
  });
});
