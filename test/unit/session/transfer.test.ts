import './support/fail-fast';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type { QuotaReservation } from '../../../src/auth/quota-ledger';
import type { WriteWindow } from '../../../src/io/write-window';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { Transfer } from '../../../src/session/transfer';
import type { ReadHandle, StagedWrite } from '../../../src/storage/storage-adapter';
import { settlesNow } from './support/fake-session';

const quotaSpy = () => {
  const aborted: number[] = [];
  const quota: QuotaReservation = { resumedFrom: () => undefined, admit: () => undefined, committed: () => undefined, aborted: (kept = 0) => void aborted.push(kept), change: (work) => work() };
  return { quota, aborted };
};

describe('Transfer', () => {
  test('an upload hashes with its algorithm and has its declared size', () => {
    const transfer = new Transfer(3, { verb: 'UPLOAD', size: 12 }, 'sha256');
    expect(transfer.id).toBe(3);
    expect(transfer.size).toBe(12);
    expect(transfer.hash?.algorithm).toBe('sha256');
    transfer.hash!.update(Buffer.from('x'));
    expect(transfer.hash!.hex()).toBe(createHash('sha256').update('x').digest('hex'));
    expect(new Transfer(1, { verb: 'ADDFILE', size: 5 }, 'sha256').size).toBe(5);
  });

  test('other requests carry no hash and no size', () => {
    const transfer = new Transfer(1, { verb: 'DOWNLOAD' }, 'sha256');
    expect(transfer.hash).toBeUndefined();
    expect(transfer.size).toBe(0);
  });

  test('its display name is its name, or (unnamed) before the name is known', () => {
    const transfer = new Transfer(1, { verb: 'STAT' }, 'sha256');
    expect(transfer.displayName).toBe('(unnamed)');
    transfer.name = 'a/b' as RemoteName;
    expect(transfer.displayName).toBe('a/b');
  });

  test('a fresh request has no state yet', () => {
    const transfer = new Transfer(1, { verb: 'UPLOAD', size: 1 }, 'sha256');
    expect(transfer.storageHung).toBe(false);
    expect(transfer.received).toBe(0);
    expect(transfer.released).toBe(false);
  });

  test('elapsed time is counted in milliseconds from its start', () => {
    const transfer = new Transfer(1, { verb: 'STAT' }, 'sha256');
    const first = transfer.elapsedMs();
    expect(first).toBeGreaterThanOrEqual(0);
    // Not a timing assertion: a freshly made request cannot be a minute old (nanoseconds or a sum would be).
    expect(first).toBeLessThan(60_000);
    const busyUntil = process.hrtime.bigint() + 2_000_000n;
    while (process.hrtime.bigint() < busyUntil);
    expect(transfer.elapsedMs()).toBeGreaterThanOrEqual(2);
  });

  test('settled resolves once settle is called', async () => {
    const transfer = new Transfer(1, { verb: 'STAT' }, 'sha256');
    expect(await settlesNow(transfer.settled)).toBe(false);
    transfer.settle();
    expect(await settlesNow(transfer.settled)).toBe(true);
  });

  test('release settles it, runs each clean-up once, and a clean-up added later runs at once', async () => {
    const transfer = new Transfer(1, { verb: 'DOWNLOAD' }, 'sha256');
    const ran: string[] = [];
    transfer.onRelease(() => ran.push('slot'));
    transfer.onRelease(() => ran.push('lock'));
    expect(ran).toEqual([]);
    expect(await transfer.release()).toBe(0);
    expect(transfer.released).toBe(true);
    expect(await settlesNow(transfer.settled)).toBe(true);
    expect(ran).toEqual(['slot', 'lock']);
    await transfer.release();
    expect(ran).toEqual(['slot', 'lock']);
    transfer.onRelease(() => ran.push('late'));
    expect(ran).toEqual(['slot', 'lock', 'late']);
  });

  test("release closes a download's file and frees the write window", async () => {
    const transfer = new Transfer(1, { verb: 'DOWNLOAD' }, 'sha256');
    const stream = Readable.from([Buffer.from('x')]);
    transfer.download = { stream } as unknown as ReadHandle;
    let windowReleased = 0;
    transfer.writeWindow = { release: () => void windowReleased++ } as unknown as WriteWindow;
    await transfer.release();
    expect(stream.destroyed).toBe(true);
    expect(transfer.download).toBeUndefined();
    expect(windowReleased).toBe(1);
  });

  test('an interrupted upload is suspended once; what storage keeps stays in the quota', async () => {
    const transfer = new Transfer(1, { verb: 'UPLOAD', size: 100 }, 'sha256');
    let suspends = 0;
    transfer.staged = { suspend: async () => (suspends++, 60) } as unknown as StagedWrite;
    const { quota, aborted } = quotaSpy();
    transfer.quota = quota;
    expect(await transfer.release()).toBe(60);
    expect(transfer.staged).toBeUndefined();
    expect(aborted).toEqual([60]);
    expect(await transfer.release()).toBe(0);
    expect(suspends).toBe(1);
  });

  test('a suspend that fails keeps nothing', async () => {
    const transfer = new Transfer(1, { verb: 'UPLOAD', size: 100 }, 'sha256');
    transfer.staged = { suspend: () => Promise.reject(new Error('EIO')) } as unknown as StagedWrite;
    const { quota, aborted } = quotaSpy();
    transfer.quota = quota;
    expect(await transfer.release()).toBe(0);
    expect(aborted).toEqual([0]);
  });

  test('released with no staging file: the reservation is given back as nothing stored, unless its commit settles it', async () => {
    const refused = new Transfer(1, { verb: 'UPLOAD', size: 100 }, 'sha256');
    const first = quotaSpy();
    refused.quota = first.quota;
    expect(await refused.release()).toBe(0);
    expect(first.aborted).toEqual([0]);
    const committing = new Transfer(2, { verb: 'UPLOAD', size: 100 }, 'sha256');
    const second = quotaSpy();
    committing.quota = second.quota;
    committing.committing = true;
    expect(await committing.release()).toBe(0);
    expect(second.aborted).toEqual([]);
  });

  test('an interrupted upload of a user without a quota is suspended just the same', async () => {
    const transfer = new Transfer(1, { verb: 'UPLOAD', size: 100 }, 'sha256');
    transfer.staged = { suspend: async () => 40 } as unknown as StagedWrite;
    expect(await transfer.release()).toBe(40);
  });
});
