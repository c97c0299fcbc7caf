import './support/fail-fast';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { Command } from '../../../src/protocol/command';
import type { StagedWrite } from '../../../src/storage/storage-adapter';
import { Transfer } from '../../../src/session/transfer';
import { captureLogs, fakeSession, fakeSocket, recordingObserver, settlesNow } from './support/fake-session';

const stat: Command = { verb: 'STAT' };
const upload = (size: number): Command => ({ verb: 'UPLOAD', size });

describe('SessionContext: identity and defaults', () => {
  test('each session gets the next id; its remote is address:port, in every log line', () => {
    const { logger, lines } = captureLogs();
    const first = fakeSession({ logger });
    const second = fakeSession({ logger });
    expect(second.id).toBe(first.id + 1);
    expect(first.remote).toBe('127.0.0.9:4242');
    first.log.info('hello');
    expect(lines[0]).toMatchObject({ session: first.id, remote: '127.0.0.9:4242', msg: 'hello' });
  });

  test('a new session: no body on the wire, no commits, SHA-256, its flow over its socket', () => {
    const socket = fakeSocket();
    const ctx = fakeSession({ socket });
    expect(ctx.midBody).toBe(false);
    expect(ctx.commitsInFlight).toBe(0);
    expect(ctx.hash).toBe('sha256');
    expect(ctx.signal.aborted).toBe(false);
    ctx.flow.hold();
    expect(socket.isPaused()).toBe(true);
  });
});

describe('SessionContext.beginTransfer', () => {
  test('numbers transfers from 1, with the session hash, and takes budget for each', () => {
    const ctx = fakeSession();
    ctx.hash = 'blake3' as typeof ctx.hash;
    const first = ctx.beginTransfer({ verb: 'LIST' });
    const second = ctx.beginTransfer(stat);
    expect([first.id, second.id]).toEqual([1, 2]);
    expect(first.algorithm).toBe('blake3');
    expect(second.command).toBe(stat);
    // One LIST is the whole LIST budget: the next waits until this one ends.
    expect(ctx.budget.roomFor('LIST')).toBeInstanceOf(Promise);
  });
});

describe('SessionContext.earlierRequestsOn', () => {
  const setup = () => {
    const ctx = fakeSession();
    const on = (name: string) => {
      const transfer = ctx.beginTransfer(stat);
      return { transfer, wait: ctx.earlierRequestsOn(name, transfer) };
    };
    return { ctx, on };
  };

  test('the first request on a name waits for nothing; unrelated names do not wait for each other', async () => {
    const { on } = setup();
    expect(await settlesNow(on('a').wait)).toBe(true);
    expect(await settlesNow(on('b').wait)).toBe(true);
    expect(await settlesNow(on('ab').wait)).toBe(true);
    expect(await settlesNow(on('c/a').wait)).toBe(true);
  });

  test.each([
    ['the same name', 'a/b', 'a/b'],
    ['a folder above it', 'a', 'a/b/c'],
    ['the folder right above it', 'a/b', 'a/b/c'],
    ['a name below it', 'a/b/c', 'a'],
    ['the root LIST', '', 'x/y'],
    ['anything, for a root LIST', 'x/y', ''],
  ])('a request waits for an earlier one on %s', async (_label, earlier, later) => {
    const { on } = setup();
    const first = on(earlier);
    const second = on(later);
    expect(await settlesNow(second.wait)).toBe(false);
    first.transfer.settle();
    expect(await settlesNow(second.wait)).toBe(true);
  });

  test('a name that only starts like another does not wait for it', async () => {
    const { on } = setup();
    on('a');
    on('ab/c');
    expect(await settlesNow(on('abc').wait)).toBe(true);
    expect(await settlesNow(on('a/x').wait)).toBe(false);
  });

  test('an earlier request on a longer name that only starts like this one is not below it', async () => {
    const { on } = setup();
    on('ab');
    on('ab/c');
    expect(await settlesNow(on('a').wait)).toBe(true);
  });

  test('the claims of settled requests are let go: the map holds only requests in flight', async () => {
    const { ctx, on } = setup();
    const claims = (ctx as unknown as { pendingByName: Map<string, unknown> }).pendingByName;
    const first = on('x');
    const second = on('x');
    on('y').transfer.settle();
    first.transfer.settle();
    await settlesNow(second.wait);
    expect([...claims.keys()]).toEqual(['x']);
    second.transfer.settle();
    await settlesNow(second.transfer.settled);
    expect(claims.size).toBe(0);
  });

  test('a request naming one path twice does not wait for itself', async () => {
    const { ctx } = setup();
    const rename = ctx.beginTransfer({ verb: 'RENAME' });
    expect(await settlesNow(ctx.earlierRequestsOn('a', rename))).toBe(true);
    expect(await settlesNow(ctx.earlierRequestsOn('a', rename))).toBe(true);
  });

  test('it waits for every earlier request it touches, not just one', async () => {
    const { on } = setup();
    const above = on('a');
    const below = on('a/b/c');
    const later = on('a/b');
    above.transfer.settle();
    expect(await settlesNow(later.wait)).toBe(false);
    below.transfer.settle();
    expect(await settlesNow(later.wait)).toBe(true);
  });

  test('a settled request no longer holds its name, but a later one on the same name still does', async () => {
    const { on } = setup();
    const first = on('x');
    const second = on('x');
    first.transfer.settle();
    expect(await settlesNow(second.wait)).toBe(true);
    const third = on('x');
    expect(await settlesNow(third.wait)).toBe(false);
    second.transfer.settle();
    expect(await settlesNow(third.wait)).toBe(true);
  });
});

describe('SessionContext.holdTransferSlot', () => {
  const slots = () => {
    const log: string[] = [];
    const take = (user: string) => () => {
      log.push(`take ${user}`);
      return () => log.push(`release ${user}`);
    };
    return { log, take };
  };

  test('one slot per session while any request is in progress, given back with the last', () => {
    const ctx = fakeSession();
    const { log, take } = slots();
    const a = ctx.holdTransferSlot('alice', take('alice'));
    const b = ctx.holdTransferSlot('alice', take('alice'));
    expect(log).toEqual(['take alice']);
    a();
    a();
    expect(log).toEqual(['take alice']);
    b();
    expect(log).toEqual(['take alice', 'release alice']);
    ctx.holdTransferSlot('alice', take('alice'));
    expect(log).toEqual(['take alice', 'release alice', 'take alice']);
  });

  test('another user (after AUTH) gives the old slot back and takes one of its own', () => {
    const ctx = fakeSession();
    const { log, take } = slots();
    const anon = ctx.holdTransferSlot('anonymous', take('anonymous'));
    ctx.holdTransferSlot('alice', take('alice'));
    expect(log).toEqual(['take anonymous', 'release anonymous', 'take alice']);
    anon(); // the old slot's last request ends: alice's slot stays
    ctx.holdTransferSlot('alice', take('alice'));
    expect(log.filter((line) => line === 'take alice')).toHaveLength(1);
  });

  test('BUSY from take reaches the caller', () => {
    const ctx = fakeSession();
    const busy = new RxferError('BUSY', 'full');
    expect(() =>
      ctx.holdTransferSlot('alice', () => {
        throw busy;
      }),
    ).toThrow(busy);
  });
});

describe('SessionContext.storageCall', () => {
  afterEach(() => jest.useRealTimers());

  const failure = async (promise: Promise<unknown>) => {
    try {
      await promise;
    } catch (err) {
      return err as RxferError;
    }
    throw new Error('expected a failure');
  };

  test("returns the call's answer", async () => {
    expect(await fakeSession().storageCall('stat', 'x', async () => 42)).toBe(42);
  });

  test('a storage code passes unchanged, unlogged', async () => {
    const { logger, lines } = captureLogs();
    const notFound = new RxferError('NOT_FOUND', 'x does not exist');
    expect(await failure(fakeSession({ logger }).storageCall('stat', 'x', () => Promise.reject(notFound)))).toBe(notFound);
    expect(lines.filter((line) => line.msg !== undefined && String(line.msg).startsWith('Storage failed'))).toEqual([]);
  });

  test('a raw errno failure becomes its storage code, and is logged', async () => {
    const { logger, lines } = captureLogs();
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write /srv/secret/x'), { code: 'ENOSPC' });
    const err = await failure(fakeSession({ logger }).storageCall('store', 'x', () => Promise.reject(enospc)));
    expect(err.code).toBe('NO_SPACE');
    expect(err.message).toBe('no space left to store x');
    const warning = lines.find((line) => line.level === 40);
    expect(warning?.msg).toBe('Storage failed to store x without a storage code; reported as a storage failure');
    expect(warning?.err).toMatchObject({ code: 'ENOSPC' });
  });

  test('a call that throws before its promise is treated the same', async () => {
    const eio = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    const err = await failure(
      fakeSession().storageCall('open', 'x', () => {
        throw eio;
      }),
    );
    expect(err.code).toBe('STORAGE_FAILED');
    expect(err.message).toBe('cannot open x: EIO (i/o error)');
  });

  test("INTERNAL from an adapter becomes a storage code from its cause, never the wrapper's message", async () => {
    const cause = Object.assign(new Error('EIO: i/o error, open /srv/secret/x'), { code: 'EIO' });
    const wrapped = new RxferError('INTERNAL', 'open /srv/secret/x failed', undefined, { cause });
    const err = await failure(fakeSession().storageCall('open', 'x', () => Promise.reject(wrapped)));
    expect(err.code).toBe('STORAGE_FAILED');
    expect(err.message).toBe('cannot open x: EIO (i/o error)');
    const bare = await failure(fakeSession().storageCall('open', 'x', () => Promise.reject(new RxferError('INTERNAL', 'open /srv/secret/x failed'))));
    expect(bare.message).toBe('cannot open x: UNKNOWN');
  });

  test('a call with no answer within the stall window fails STORAGE_FAILED, naming the action', async () => {
    jest.useFakeTimers();
    const ctx = fakeSession({ limits: { stallTimeoutMs: 1000 } });
    const discarded: string[] = [];
    let answer!: (value: string) => void;
    const pending = failure(ctx.storageCall('rename', 'a', () => new Promise<string>((resolve) => (answer = resolve)), (late) => discarded.push(late)));
    await jest.advanceTimersByTimeAsync(1000);
    const err = await pending;
    expect(err.code).toBe('STORAGE_FAILED');
    expect(err.message).toContain('storage did not rename a within 1000 ms');
    answer('late');
    await jest.advanceTimersByTimeAsync(0);
    expect(discarded).toEqual(['late']);
  });
});

describe('SessionContext.endTransfer', () => {
  test('tells the observer once, releases the transfer and gives its budget back', () => {
    const { observer, calls } = recordingObserver();
    const ctx = fakeSession({ observer });
    const transfer = ctx.beginTransfer({ verb: 'LIST' });
    const released = jest.spyOn(transfer, 'release');
    ctx.endTransfer(transfer);
    ctx.endTransfer(transfer, { complete: false });
    expect(calls).toEqual([['requestEnded', ctx, transfer, { complete: true }]]);
    expect(released).toHaveBeenCalledTimes(1);
    expect(ctx.budget.roomFor('LIST')).toBeUndefined();
  });

  test('passes the ending it is given', () => {
    const { observer, calls } = recordingObserver();
    const ctx = fakeSession({ observer });
    const transfer = ctx.beginTransfer(stat);
    ctx.endTransfer(transfer, { complete: false, reply: { kind: 'bye' } });
    expect(calls).toEqual([['requestEnded', ctx, transfer, { complete: false, reply: { kind: 'bye' } }]]);
  });

  test('a transfer this session never began is ignored', () => {
    const { observer, calls } = recordingObserver();
    const ctx = fakeSession({ observer });
    ctx.endTransfer(new Transfer(9, stat, 'sha256'));
    expect(calls).toEqual([]);
  });
});

describe('SessionContext.logDone', () => {
  test('one info line with the size, time and rate', () => {
    const { logger, lines } = captureLogs();
    const ctx = fakeSession({ logger });
    const transfer = Object.assign(new Transfer(1, upload(4 * 1048576), 'sha256'), { name: 'f.bin', elapsedMs: () => 2000 }) as unknown as Transfer;
    ctx.logDone(transfer, 'Stored', 4 * 1048576, 'ab'.repeat(32));
    expect(lines[0]).toMatchObject({ file: 'f.bin', bytes: 4194304, ms: 2000, hash: 'sha256', digest: 'ab'.repeat(32), msg: 'Stored f.bin (4194304 bytes) in 2000 ms, 2.0 MiB/s' });
  });

  test('without a digest no hash fields; the size defaults to the declared one; zero time is 0 MiB/s', () => {
    const { logger, lines } = captureLogs();
    const ctx = fakeSession({ logger });
    const transfer = Object.assign(new Transfer(1, upload(1000), 'sha256'), { elapsedMs: () => 0 }) as unknown as Transfer;
    ctx.logDone(transfer, 'Sent');
    expect(lines[0]!.msg).toBe('Sent (unnamed) (1000 bytes) in 0 ms, 0.0 MiB/s');
    expect(lines[0]).not.toHaveProperty('hash');
    expect(lines[0]).not.toHaveProperty('digest');
  });
});

describe('SessionContext.dispose', () => {
  const staged = (kept: number | Error): StagedWrite =>
    ({ suspend: () => (kept instanceof Error ? Promise.reject(kept) : Promise.resolve(kept)) }) as unknown as StagedWrite;

  test('aborts the signal and ends every open request as cut off', async () => {
    const { observer, calls } = recordingObserver();
    const ctx = fakeSession({ observer });
    const a = ctx.beginTransfer(stat);
    const b = ctx.beginTransfer(stat);
    ctx.endTransfer(b);
    calls.length = 0;
    await ctx.dispose();
    expect(ctx.signal.aborted).toBe(true);
    expect(calls).toEqual([['requestEnded', ctx, a, { complete: false }]]);
    expect(a.released).toBe(true);
    await ctx.dispose();
    expect(calls).toHaveLength(1);
  });

  test('an interrupted upload is logged with what was kept for a resume', async () => {
    const { logger, lines } = captureLogs();
    const ctx = fakeSession({ logger });
    const kept = ctx.beginTransfer(upload(100));
    kept.name = 'big' as typeof kept.name;
    kept.received = 60;
    kept.staged = staged(60);
    const lost = ctx.beginTransfer(upload(10));
    lost.name = 'small' as typeof lost.name;
    lost.staged = staged(new Error('suspend failed'));
    ctx.beginTransfer(stat); // not an upload: no line
    await ctx.dispose();
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings.map((line) => line.msg).sort()).toEqual([
      'Upload of big interrupted after 60 of 100 bytes; nothing committed; 60 bytes kept for a resume',
      'Upload of small interrupted after 0 of 10 bytes; nothing committed',
    ]);
    expect(warnings.find((line) => line.file === 'big')).toMatchObject({ received: 60, declared: 100, kept: 60 });
  });

  test('a release that fails counts as nothing kept', async () => {
    const { logger, lines } = captureLogs();
    const ctx = fakeSession({ logger });
    const upload = ctx.beginTransfer({ verb: 'UPLOAD', size: 10 });
    upload.staged = staged(5);
    upload.onRelease(() => {
      throw new Error('clean-up failed');
    });
    await ctx.dispose();
    expect(lines.find((line) => line.level === 40)).toMatchObject({ kept: 0, msg: 'Upload of (unnamed) interrupted after 0 of 10 bytes; nothing committed' });
  });
});
