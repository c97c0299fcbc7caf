import '../session/support/fail-fast';
import { Readable } from 'node:stream';
import type { QuotaLedger, QuotaReservation } from '../../../src/auth/quota-ledger';
import type { TransferSlots } from '../../../src/auth/transfer-slots';
import type { User } from '../../../src/auth/user';
import { RxferError } from '../../../src/errors/rxfer-error';
import { ResolveFilenameStage } from '../../../src/pipeline/stages/resolve-filename.stage';
import type { Command } from '../../../src/protocol/command';
import type { SessionEvent } from '../../../src/session/session-event';
import type { Transfer } from '../../../src/session/transfer';
import type { ReadHandle, StagedWrite, StorageAdapter } from '../../../src/storage/storage-adapter';
import { fakeSession } from '../session/support/fake-session';
import { flush, runStage } from './support/run-stage';

/**
 * A storage call that answers after its deadline (limits.stallTimeoutMs): the request has been
 * refused with STORAGE_FAILED by then, so what the call brings late (an open file, a quota
 * reservation, a staging file) belongs to nobody and must be given back, or each hung-then-recovered
 * call leaks a descriptor, quota or staging file (issue 17). The deadline is the smallest allowed
 * (500 ms); the waits below are failure guards, not timing assertions.
 */
const alice: User = { name: 'alice', role: 'write', root: 'alice', quotaBytes: 1000 };

const deferred = <T>() => {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((done, fail) => ((resolve = done), (reject = fail)));
  return { promise, resolve, reject };
};

const setup = ({ lateReserve }: { lateReserve: boolean }) => {
  const read = deferred<ReadHandle>();
  const reserve = deferred<QuotaReservation>();
  const write = deferred<StagedWrite>();
  const begun = { writes: 0 };
  const storage = { openRead: () => read.promise, sizeOf: async () => 0, beginWrite: () => (begun.writes++, write.promise) } as unknown as StorageAdapter;
  const given = { aborted: 0, changing: 0 };
  /** Counts the changes under way: the ledger's measurement waits for them (QuotaLedger.change). */
  const change = async <T>(work: () => Promise<T>): Promise<T> => {
    given.changing++;
    try {
      return await work();
    } finally {
      given.changing--;
    }
  };
  const reservation = { resumedFrom: () => undefined, committed: () => undefined, aborted: () => void given.aborted++, change } as unknown as QuotaReservation;
  const quotas = { reserve: () => (lateReserve ? reserve.promise : Promise.resolve(reservation)), freed: () => undefined } as unknown as QuotaLedger;
  const slots = { take: () => () => undefined } as unknown as TransferSlots;
  const ctx = fakeSession({ limits: { stallTimeoutMs: 500 } });
  const run = runStage(new ResolveFilenameStage(storage, ctx.config, slots, quotas), ctx);
  const request = (command: Command, raw: string): Transfer => {
    const transfer = ctx.beginTransfer(command);
    transfer.user = alice;
    run.input.next({ type: 'named', transfer, raw: Buffer.from(raw) });
    return transfer;
  };
  /** The request's outcome: its refusal or acceptance, once it has one (within 10 s). */
  const outcomeOf = async (transfer: Transfer): Promise<SessionEvent | undefined> => {
    for (let i = 0; i < 100; i++) {
      const mine = run.out.filter((event) => 'transfer' in event && event.transfer === transfer);
      const pending = mine.find((event) => event.type === 'pending');
      if (pending && pending.type === 'pending') return (await pending.outcome)[0];
      if (mine.length > 0) return mine[0];
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return undefined;
  };
  return { read, reserve, write, reservation, given, begun, request, outcomeOf };
};

const refusedCode = (event: SessionEvent | undefined) => (event?.type === 'refused' ? (event.error as RxferError).code : event?.type);

/** An upload whose staging file storage has not opened by the deadline: refused with STORAGE_FAILED, its beginWrite still to answer. */
const uploadCutByDeadline = async () => {
  const stage = setup({ lateReserve: false });
  const transfer = stage.request({ verb: 'UPLOAD', size: 10 }, 'slow.bin');
  expect(refusedCode(await stage.outcomeOf(transfer))).toBe('STORAGE_FAILED');
  return stage;
};

describe('ResolveFilenameStage: what a storage call brings after its deadline is given back', () => {
  test('DOWNLOAD: the file opened late is closed', async () => {
    const { read, request, outcomeOf } = setup({ lateReserve: false });
    const transfer = request({ verb: 'DOWNLOAD' }, 'slow.bin');
    expect(refusedCode(await outcomeOf(transfer))).toBe('STORAGE_FAILED');
    const stream = Readable.from([Buffer.from('late')]);
    read.resolve({ file: { name: 'alice/slow.bin', size: 4, digest: '00', mtimeMs: 1 }, stream, offset: 0 } as unknown as ReadHandle);
    await flush();
    expect(stream.destroyed).toBe(true);
  });

  test('UPLOAD: a quota reservation made late is given back', async () => {
    const { reserve, reservation, given, request, outcomeOf } = setup({ lateReserve: true });
    const transfer = request({ verb: 'UPLOAD', size: 10 }, 'slow.bin');
    expect(refusedCode(await outcomeOf(transfer))).toBe('STORAGE_FAILED');
    expect(given.aborted).toBe(0);
    reserve.resolve(reservation);
    await flush();
    expect(given.aborted).toBe(1);
  });

  test('UPLOAD: a staging file begun late is suspended (a resume keeps its kept bytes), never committed', async () => {
    const { write } = await uploadCutByDeadline();
    const calls: string[] = [];
    write.resolve({ sink: null, suspend: async () => void calls.push('suspend'), abort: async () => void calls.push('abort'), commit: async () => void calls.push('commit') } as unknown as StagedWrite);
    await flush();
    expect(calls).toEqual(['suspend']);
  });

  test('UPLOAD: a session that ends while its reservation is made opens no staging file, and gives the reservation back', async () => {
    const { reserve, reservation, given, begun, request } = setup({ lateReserve: true });
    const transfer = request({ verb: 'UPLOAD', size: 10 }, 'gone.bin');
    await flush();
    await transfer.release();
    reserve.resolve(reservation);
    await flush();
    await flush();
    // A fresh claim would have deleted the name's kept upload for an upload that never comes.
    expect(begun.writes).toBe(0);
    expect(given.aborted).toBeGreaterThanOrEqual(1);
  });

  test('UPLOAD: a staging file begun late stays a change of the user\'s storage until it is suspended', async () => {
    const { write, given } = await uploadCutByDeadline();
    // Refused at the deadline, but the claim goes on: a measurement must still wait for it.
    expect(given.changing).toBe(1);
    let suspend!: () => void;
    write.resolve({ sink: null, suspend: () => new Promise<number>((done) => (suspend = () => done(0))) } as unknown as StagedWrite);
    await flush();
    expect(given.changing).toBe(1);
    suspend();
    await flush();
    expect(given.changing).toBe(0);
  });

  test('UPLOAD: a staging file that fails after the deadline ends the change too', async () => {
    const { write, given } = await uploadCutByDeadline();
    expect(given.changing).toBe(1);
    write.reject(Object.assign(new Error('EIO: i/o error, open'), { code: 'EIO' }));
    await flush();
    expect(given.changing).toBe(0);
  });
});
