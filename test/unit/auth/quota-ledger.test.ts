import '../session/support/fail-fast';
import { QuotaLedger } from '../../../src/auth/quota-ledger';
import type { User } from '../../../src/auth/user';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { StorageAdapter } from '../../../src/storage/storage-adapter';
import type { RxferConfig } from '../../../src/config/config.schema';

/** Only `usage` is asked of storage: the bytes stored under a root, as measured. */
const storageWith = (usage: Record<string, number>) => {
  const calls: string[] = [];
  const storage = {
    usage: async (root: string) => {
      calls.push(root);
      return usage[root] ?? 0;
    },
  } as unknown as StorageAdapter;
  return { storage, calls };
};

const alice: User = { name: 'alice', role: 'write', root: 'alice-root', quotaBytes: 100 };
const bob: User = { name: 'bob', role: 'write', root: 'bob-root', quotaBytes: 100 };
const nothing = async () => undefined;

/** The reservation's error, or undefined when it fits. */
const refusal = async (ledger: QuotaLedger, user: User, size: number, current: () => Promise<number | undefined> = nothing) => {
  try {
    await ledger.reserve(user, size, current);
    return undefined;
  } catch (err) {
    return err as RxferError;
  }
};


const probe = async (ledger: QuotaLedger, user: User): Promise<number> => {
  // Binary search is overkill: quotas here are 100 bytes. Each fitting reservation is aborted at once.
  for (let free = 0; free <= (user.quotaBytes ?? 0); free++) {
    const next = free + 1;
    try {
      const reservation = await ledger.reserve(user, next, nothing);
      reservation.aborted();
    } catch {
      return free;
    }
  }
  return (user.quotaBytes ?? 0) + 1;
};

describe('QuotaLedger', () => {
  test('a user without a quota is never measured and never refused', async () => {
    const { storage, calls } = storageWith({});
    const ledger = new QuotaLedger(storage);
    const free = { name: 'free', role: 'write', root: 'r' } as const;
    const reservation = await ledger.reserve(free, 10 ** 15, nothing);
    reservation.resumedFrom(5);
    reservation.committed(3);
    reservation.aborted(1);
    ledger.freed(free, 10);
    expect(calls).toEqual([]);
  });

  test("usage is measured once, under the user's root, and the reservation fits up to the quota exactly", async () => {
    const { storage, calls } = storageWith({ 'alice-root': 60 });
    const ledger = new QuotaLedger(storage);
    expect(await probe(ledger, alice)).toBe(40);
    expect(calls).toEqual(['alice-root']);
  });

  test('a reservation over the quota is refused with QUOTA_EXCEEDED and the real numbers', async () => {
    const { storage } = storageWith({ 'alice-root': 60 });
    const ledger = new QuotaLedger(storage);
    const err = await refusal(ledger, alice, 41);
    expect(err).toBeInstanceOf(RxferError);
    expect(err!.code).toBe('QUOTA_EXCEEDED');
    expect(err!.message).toBe('alice uses 60 of 100 bytes; 41 more do not fit');
    expect(err!.detail).toEqual({ used: 60, quota: 100, size: 41 });
  });

  test('replacing a file needs only the growth', async () => {
    const { storage } = storageWith({ 'alice-root': 90 });
    const ledger = new QuotaLedger(storage);
    // 90 used, of which 50 is the file replaced: 60 fit, 61 do not.
    expect(await refusal(ledger, alice, 60, async () => 50)).toBeUndefined();
    const second = new QuotaLedger(storageWith({ 'alice-root': 90 }).storage);
    expect((await refusal(second, alice, 61, async () => 50))?.code).toBe('QUOTA_EXCEEDED');
  });

  test('a reservation counts until it is settled: the next one sees it', async () => {
    const { storage } = storageWith({ 'alice-root': 10 });
    const ledger = new QuotaLedger(storage);
    await ledger.reserve(alice, 30, nothing);
    expect(await probe(ledger, alice)).toBe(60);
  });

  test('two reservations at once cannot both take the same room (each waits for its current size on its own)', async () => {
    // 10 used of 100: two uploads of 60 each fit alone, not together. Each asks storage for the size
    // of the file it replaces first (an await), so both check the quota before either has reserved.
    const { storage } = storageWith({ 'alice-root': 10 });
    const ledger = new QuotaLedger(storage);
    const results = await Promise.all([refusal(ledger, alice, 60), refusal(ledger, alice, 60, async () => undefined)]);
    expect(results.filter((err) => err === undefined)).toHaveLength(1);
    expect(results.find((err) => err !== undefined)).toMatchObject({ code: 'QUOTA_EXCEEDED', detail: { used: 70, quota: 100, size: 60 } });
    expect(await probe(ledger, alice)).toBe(30);
  });

  test('many reservations at once: exactly as many as fit, and the rest refused', async () => {
    const { storage } = storageWith({ 'alice-root': 0 });
    const ledger = new QuotaLedger(storage);
    const slowSize = () => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), Math.random() * 5));
    const results = await Promise.all(Array.from({ length: 25 }, () => refusal(ledger, alice, 10, slowSize)));
    expect(results.filter((err) => err === undefined)).toHaveLength(10);
    expect(await probe(ledger, alice)).toBe(0);
  });

  test('a measurement that fails fails that reservation only: the next one measures again', async () => {
    let failures = 1;
    const calls: string[] = [];
    const storage = {
      usage: async (root: string) => {
        calls.push(root);
        if (failures-- > 0) throw Object.assign(new Error('EIO: i/o error, scandir'), { code: 'EIO' });
        return 40;
      },
    } as unknown as StorageAdapter;
    const ledger = new QuotaLedger(storage);
    await expect(ledger.reserve(alice, 10, nothing)).rejects.toMatchObject({ code: 'EIO' });
    expect(await refusal(ledger, alice, 60)).toBeUndefined();
    expect(calls).toEqual(['alice-root', 'alice-root']);
    expect(await probe(ledger, alice)).toBe(0);
  });

  test("users are counted apart", async () => {
    const { storage, calls } = storageWith({ 'alice-root': 10, 'bob-root': 70 });
    const ledger = new QuotaLedger(storage);
    await ledger.reserve(alice, 30, nothing);
    expect(await probe(ledger, bob)).toBe(30);
    expect(await probe(ledger, alice)).toBe(60);
    expect(calls.sort()).toEqual(['alice-root', 'bob-root']);
  });

  test('committed keeps the reservation, minus the file it replaced; settling twice counts once', async () => {
    const { storage } = storageWith({ 'alice-root': 0 });
    const ledger = new QuotaLedger(storage);
    const reservation = await ledger.reserve(alice, 50, async () => 20);
    reservation.committed(20);
    expect(await probe(ledger, alice)).toBe(70);
    reservation.committed(20);
    reservation.aborted();
    expect(await probe(ledger, alice)).toBe(70);
  });

  test('aborted gives the whole reservation back when nothing is kept; settling again changes nothing', async () => {
    const { storage } = storageWith({ 'alice-root': 30 });
    const ledger = new QuotaLedger(storage);
    const reservation = await ledger.reserve(alice, 50, nothing);
    reservation.aborted();
    expect(await probe(ledger, alice)).toBe(70);
    reservation.aborted();
    reservation.committed(20);
    expect(await probe(ledger, alice)).toBe(70);
  });

  test('aborted keeps what storage keeps for a resume, never more than was reserved', async () => {
    const { storage } = storageWith({ 'alice-root': 0 });
    const ledger = new QuotaLedger(storage);
    const kept = await ledger.reserve(alice, 50, nothing);
    kept.aborted(30);
    expect(await probe(ledger, alice)).toBe(70);
    const over = await ledger.reserve(alice, 10, nothing);
    over.aborted(25); // more than held: all of it stays, nothing more
    expect(await probe(ledger, alice)).toBe(60);
  });

  test('a resumed upload holds the kept prefix too: its abort drops prefix and new bytes', async () => {
    const { storage } = storageWith({ 'alice-root': 40 }); // 40 kept from an interrupted upload
    const ledger = new QuotaLedger(storage);
    const reservation = await ledger.reserve(alice, 20, nothing);
    reservation.resumedFrom(40);
    reservation.aborted(); // the staging data, prefix included, is deleted
    expect(await probe(ledger, alice)).toBe(100);
  });

  test('resumedFrom after settling changes nothing', async () => {
    const { storage } = storageWith({ 'alice-root': 40 });
    const ledger = new QuotaLedger(storage);
    const reservation = await ledger.reserve(alice, 20, nothing);
    reservation.committed(0);
    reservation.resumedFrom(40);
    reservation.aborted();
    expect(await probe(ledger, alice)).toBe(40);
  });

  test('freed bytes no longer count, and usage never goes below zero', async () => {
    const { storage } = storageWith({ 'alice-root': 60 });
    const ledger = new QuotaLedger(storage);
    expect(await probe(ledger, alice)).toBe(40);
    ledger.freed(alice, 25);
    expect(await probe(ledger, alice)).toBe(65);
    ledger.freed(alice, 1000);
    expect(await probe(ledger, alice)).toBe(100);
    ledger.freed(alice, 0);
    ledger.freed(alice, -5);
    expect(await probe(ledger, alice)).toBe(100);
  });

  test('freed before anything was measured needs nothing: the measurement sees storage as it is', async () => {
    const { storage, calls } = storageWith({ 'alice-root': 60 });
    const ledger = new QuotaLedger(storage);
    ledger.freed(alice, 25);
    expect(calls).toEqual([]);
    expect(await probe(ledger, alice)).toBe(40);
  });

  test('remeasure forgets the counts: storage is measured again', async () => {
    const usage: Record<string, number> = { 'alice-root': 60 };
    const { storage, calls } = storageWith(usage);
    const ledger = new QuotaLedger(storage);
    expect(await probe(ledger, alice)).toBe(40);
    usage['alice-root'] = 10;
    expect(await probe(ledger, alice)).toBe(40);
    ledger.remeasure();
    expect(await probe(ledger, alice)).toBe(90);
    expect(calls).toEqual(['alice-root', 'alice-root']);
  });

  test('remeasure keeps what uploads in flight reserved: only the stored part is measured again', async () => {
    const usage: Record<string, number> = { 'alice-root': 10 };
    const { storage } = storageWith(usage);
    const ledger = new QuotaLedger(storage);
    const inFlight = await ledger.reserve(alice, 50, nothing);
    ledger.remeasure();
    expect(await probe(ledger, alice)).toBe(40);
    // Committed, the upload is stored: what the next measurement will see, and what the count says until then.
    inFlight.committed(0);
    usage['alice-root'] = 60;
    expect(await probe(ledger, alice)).toBe(40);
    ledger.remeasure();
    expect(await probe(ledger, alice)).toBe(40);
  });

  test('storage changing while it is measured: measured again, the change not counted twice', async () => {
    // The first walk runs while a DELETE of 30 bytes lands; whether the walk saw the file or not, the count must be 10.
    let walks = 0;
    let deleteDuringWalk: (() => void) | undefined;
    const storage = {
      usage: async () => {
        walks++;
        if (walks === 1) {
          deleteDuringWalk?.();
          return 10; // this walk no longer saw the deleted file
        }
        return 10;
      },
    } as unknown as StorageAdapter;
    const ledger = new QuotaLedger(storage);
    deleteDuringWalk = () => ledger.freed(alice, 30);
    expect(await probe(ledger, alice)).toBe(90);
    expect(walks).toBe(2);
  });

  test('a resumed upload moves its kept bytes from stored to in flight: a remeasure then does not count them twice', async () => {
    const usage: Record<string, number> = { 'alice-root': 30 };
    const { storage } = storageWith(usage);
    const ledger = new QuotaLedger(storage);
    const reservation = await ledger.reserve(alice, 40, nothing);
    reservation.resumedFrom(30); // 30 kept bytes, counted in the 30 measured, are now this upload's
    expect(await probe(ledger, alice)).toBe(30);
    usage['alice-root'] = 0; // storage leaves a kept upload being written out of its usage
    ledger.remeasure();
    expect(await probe(ledger, alice)).toBe(30);
  });
});

describe('QuotaLedger at commit: admit() with the size really replaced', () => {
  const renamedAway = async () => {
    // 100 of 100 stored: X and Y, 50 each. An upload replacing Y is admitted for its growth (0).
    const { storage } = storageWith({ 'alice-root': 100 });
    const ledger = new QuotaLedger(storage);
    return ledger;
  };

  test('the file still there (or larger): admitted; gone: QUOTA_EXCEEDED with the numbers, the reservation still to settle', async () => {
    const ledger = await renamedAway();
    const upload = await ledger.reserve(alice, 50, async () => 50);
    expect(() => upload.admit(50)).not.toThrow();
    expect(() => upload.admit(70)).not.toThrow();
    let refusal: unknown;
    try {
      upload.admit(0);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(RxferError);
    expect(refusal).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      message: 'alice would use 150 of 100 bytes: the 50-byte file this upload was to replace is no longer there (renamed or deleted meanwhile); nothing stored',
      detail: { used: 150, quota: 100, size: 50 },
    });
    // 30 of the 50 still there: 130 > 100, refused too; after the abort the room is as before.
    expect(() => upload.admit(30)).toThrow(expect.objectContaining({ code: 'QUOTA_EXCEEDED' }));
    upload.aborted();
    expect(await probe(ledger, alice)).toBe(0);
  });

  test('a file cut shorter meanwhile: what it still frees counts, to the byte', async () => {
    // 60 stored (a file of 50 and one of 10); an upload of 50 over the 50-byte file: 60 + 50 − replaced after its commit.
    const { storage } = storageWith({ 'alice-root': 60 });
    const ledger = new QuotaLedger(storage);
    const upload = await ledger.reserve(alice, 50, async () => 50);
    expect(() => upload.admit(20)).not.toThrow(); // 90
    expect(() => upload.admit(10)).not.toThrow(); // 100: exactly the quota
    expect(() => upload.admit(9)).toThrow(expect.objectContaining({ code: 'QUOTA_EXCEEDED', detail: { used: 101, quota: 100, size: 50 } }));
  });

  test('an upload that fits without the file it replaces is admitted whatever it replaces; a settled one is never refused', async () => {
    const { storage } = storageWith({ 'alice-root': 10 });
    const ledger = new QuotaLedger(storage);
    const upload = await ledger.reserve(alice, 50, async () => 10);
    expect(() => upload.admit(0)).not.toThrow();
    const settled = await ledger.reserve(alice, 30, async () => 30);
    settled.committed(30);
    expect(() => settled.admit(0)).not.toThrow();
  });

  test("each commit counts what the other uploads in flight still owe for their own files, and a settled one's credit is gone", async () => {
    // 70 stored: X 60, Z 10. U replaces Z (10), W replaces X (60): in flight together the count is 140.
    const { storage } = storageWith({ 'alice-root': 70 });
    const ledger = new QuotaLedger(storage);
    const u = await ledger.reserve(alice, 10, async () => 10);
    const w = await ledger.reserve(alice, 60, async () => 60);
    expect(() => u.admit(10)).not.toThrow(); // 140 − 10 − W's 60 still owed = 70
    expect(() => u.admit(5)).not.toThrow(); // Z cut to 5 meanwhile: 75
    u.committed(10);
    expect(() => w.admit(60)).not.toThrow();
    w.committed(60);
    expect(await probe(ledger, alice)).toBe(30);
  });

  test("a settled upload's credit goes with it: the next one whose file vanishes is judged on its own", async () => {
    // 100 of 100 stored (two files of 50). A replaces one and aborts; B replaces the other, which then vanishes.
    const { storage } = storageWith({ 'alice-root': 100 });
    const ledger = new QuotaLedger(storage);
    const a = await ledger.reserve(alice, 50, async () => 50);
    a.aborted();
    const b = await ledger.reserve(alice, 50, async () => 50);
    expect(() => b.admit(0)).toThrow(expect.objectContaining({ code: 'QUOTA_EXCEEDED', detail: { used: 150, quota: 100, size: 50 } }));
  });

  test('resumedFrom after the reservation settled changes nothing, even once storage is measured again', async () => {
    const usage: Record<string, number> = { 'alice-root': 20 };
    const { storage } = storageWith(usage);
    const ledger = new QuotaLedger(storage);
    const upload = await ledger.reserve(alice, 30, nothing);
    upload.committed(0);
    usage['alice-root'] = 50;
    upload.resumedFrom(30);
    upload.resumedFrom(0);
    ledger.remeasure();
    expect(await probe(ledger, alice)).toBe(50);
  });
});

describe('QuotaLedger measuring while storage changes', () => {
  test('a remeasure while a measurement runs: it is taken again', async () => {
    let walks = 0;
    let during: (() => void) | undefined;
    const storage = {
      usage: async () => {
        walks++;
        const seen = walks === 1 ? 10 : 20;
        during?.();
        during = undefined;
        return seen;
      },
    } as unknown as StorageAdapter;
    const ledger = new QuotaLedger(storage);
    during = () => ledger.remeasure();
    expect(await probe(ledger, alice)).toBe(80);
    expect(walks).toBe(2);
  });

  test('storage that changes under every walk: the fifth measurement is kept, never an endless walk', async () => {
    let walks = 0;
    let ledger: QuotaLedger | undefined;
    const storage = {
      usage: async () => {
        walks++;
        ledger!.freed(alice, 1);
        return 40;
      },
    } as unknown as StorageAdapter;
    ledger = new QuotaLedger(storage);
    const reservation = await ledger.reserve(alice, 1, nothing);
    expect(walks).toBe(5);
    reservation.aborted();
    expect(await probe(ledger, alice)).toBe(60);
  });

  describe('a change of storage and a measurement never overlap (the hostile pass of 2026-12-05c)', () => {
    /** Storage whose usage() answers what `disk` says when it is called, and counts the calls. */
    const live = (disk: { bytes: number }) => {
      const calls: number[] = [];
      const storage = { usage: async () => (calls.push(disk.bytes), disk.bytes) } as unknown as StorageAdapter;
      return { storage, calls };
    };

    test('a measurement waits for a change under way: a DELETE unlinked before the walk is subtracted once', async () => {
      const disk = { bytes: 60 };
      const { storage, calls } = live(disk);
      const ledger = new QuotaLedger(storage);
      let unlinked!: () => void;
      const deleting = ledger.change(alice, async () => {
        disk.bytes -= 40; // the unlink
        await new Promise<void>((resolve) => (unlinked = resolve));
        ledger.freed(alice, 40); // the ledger told after it
      });
      // The first measurement, asked while the DELETE is between its unlink and freed().
      const measured = probe(ledger, alice);
      await new Promise((resolve) => setImmediate(resolve));
      expect(calls).toEqual([]);
      unlinked();
      await deleting;
      expect(await measured).toBe(80);
      expect(calls).toEqual([20]);
    });

    test('a change that begins while a measurement walks waits for the walk: a commit is added once', async () => {
      const disk = { bytes: 10 };
      let walked!: () => void;
      const calls: number[] = [];
      const storage = {
        usage: async () => {
          calls.push(disk.bytes);
          const bytes = disk.bytes;
          await new Promise<void>((resolve) => (walked = resolve));
          return bytes;
        },
      } as unknown as StorageAdapter;
      const ledger = new QuotaLedger(storage);
      const first = ledger.reserve(alice, 30, nothing);
      await new Promise((resolve) => setImmediate(resolve));
      expect(calls).toEqual([10]);
      const order: string[] = [];
      const committing = ledger.change(alice, async () => {
        order.push('commit');
        disk.bytes += 30;
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(order).toEqual([]);
      walked();
      const reservation = await first;
      await committing;
      expect(order).toEqual(['commit']);
      reservation.committed(0);
      // 10 measured, 30 committed: 60 left of 100.
      expect(await probe(ledger, alice)).toBe(60);
    });

    test("a reservation's change is its user's: runs the work, answers its value, and a measurement waits for it", async () => {
      const disk = { bytes: 10 };
      const { storage, calls } = live(disk);
      const ledger = new QuotaLedger(storage);
      const reservation = await ledger.reserve(alice, 5, nothing);
      expect(calls).toEqual([10]);
      ledger.remeasure();
      let stored!: () => void;
      const committing = reservation.change(async () => {
        disk.bytes += 5;
        await new Promise<void>((resolve) => (stored = resolve));
        reservation.committed(0);
        return 'stored';
      });
      const measured = probe(ledger, alice);
      await new Promise((resolve) => setImmediate(resolve));
      expect(calls).toEqual([10]);
      stored();
      expect(await committing).toBe('stored');
      // 15 on disk, measured once after the commit: 85 left, not 80.
      expect(await measured).toBe(85);
      expect(calls).toEqual([10, 15]);
    });

    test('a change that never ends fails the measurement (STORAGE_FAILED) instead of holding every later change behind it', async () => {
      const disk = { bytes: 10 };
      const { storage, calls } = live(disk);
      const ledger = new QuotaLedger(storage, { limits: { stallTimeoutMs: 50 } } as RxferConfig);
      let endHung!: () => void;
      const hung = ledger.change(alice, () => new Promise<void>((resolve) => (endHung = resolve)));
      const refused = await refusal(ledger, alice, 1);
      expect(refused?.code).toBe('STORAGE_FAILED');
      expect(refused?.message).toBe('cannot count what alice stores: a change of its storage has not finished within 50 ms; try again');
      expect(refused?.detail).toEqual({ waitedMs: 50 });
      expect(calls).toEqual([]);
      // Other changes of the user go on meanwhile.
      expect(await ledger.change(alice, async () => 'deleted')).toBe('deleted');
      endHung();
      await hung;
      // The next reservation measures again.
      expect(await probe(ledger, alice)).toBe(90);
      expect(calls).toEqual([10]);
    });

    test('a user without a quota changes without waiting for anything, and is not counted', async () => {
      const { storage } = live({ bytes: 0 });
      const ledger = new QuotaLedger(storage);
      const free = { name: 'free', role: 'write', root: 'r' } as const;
      expect(await ledger.change(free, async () => 'done')).toBe('done');
      expect((ledger as unknown as { counts: Map<string, unknown> }).counts.has('free')).toBe(false);
    });

    test('a measurement that waited for a change leaves no timer behind', async () => {
      // Fake timers count the wait's timer even unref'd (it must not keep a stopping server alive).
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
      try {
        const { storage } = live({ bytes: 0 });
        const ledger = new QuotaLedger(storage, { limits: { stallTimeoutMs: 3_600_000 } } as RxferConfig);
        const before = jest.getTimerCount();
        let done!: () => void;
        const changing = ledger.change(alice, () => new Promise<void>((resolve) => (done = resolve)));
        const measured = probe(ledger, alice);
        await new Promise((resolve) => setImmediate(resolve));
        expect(jest.getTimerCount()).toBe(before + 1);
        done();
        await changing;
        expect(await measured).toBe(100);
        expect(jest.getTimerCount()).toBe(before);
      } finally {
        jest.useRealTimers();
      }
    });
  });
});
