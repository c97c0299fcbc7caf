import '../session/support/fail-fast';
import type { QuotaLedger, QuotaReservation } from '../../../src/auth/quota-ledger';
import type { TransferSlots } from '../../../src/auth/transfer-slots';
import type { User } from '../../../src/auth/user';
import { RxferError } from '../../../src/errors/rxfer-error';
import { LIST_PAGE_ENTRIES, ResolveFilenameStage } from '../../../src/pipeline/stages/resolve-filename.stage';
import type { Command } from '../../../src/protocol/command';
import type { Transfer } from '../../../src/session/transfer';
import type { StagedWrite, StorageAdapter } from '../../../src/storage/storage-adapter';
import { captureLogs, fakeSession } from '../session/support/fake-session';
import { flush, namedRequests, runStage } from './support/run-stage';

/**
 * What resolve-filename.test.ts does not pin down: the storage-call name each call passes to
 * ctx.storageCall (it is in the error a client gets and in the server's log when storage fails
 * without a storage code), the exact page options of a paged LIST, a cursor "/" refused for what
 * it is, and a session that ends while storage is opening an upload's staging file.
 */
const alice: User = { name: 'alice', role: 'write', root: 'alice', quotaBytes: 1000 };

const deferred = <T>() => {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
};

/** An errno error as fs gives it: no storage code of its own (storageError maps it). */
const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: i/o failure, open '/srv/rxfer/alice/x'`), { code });

interface Options {
  readonly failing?: 'list' | 'openRead' | 'sizeOf' | 'beginWrite';
  readonly error?: NodeJS.ErrnoException;
  readonly write?: Promise<StagedWrite>;
  readonly listsInPages?: boolean;
}

const setup = (options: Options = {}) => {
  const listCalls: Record<string, unknown>[] = [];
  const { logger, lines } = captureLogs();
  const answer = <T>(which: Options['failing'], value: T): Promise<T> =>
    options.failing === which ? Promise.reject(options.error ?? errno('EIO')) : Promise.resolve(value);
  const storage = {
    listsInPages: options.listsInPages,
    list: (_prefix: string, listOptions: Record<string, unknown>) => {
      listCalls.push(listOptions);
      return answer('list', []);
    },
    openRead: () => answer('openRead', { file: { name: 'alice/x', size: 0, mtimeMs: 1 }, stream: null, offset: 0 }),
    sizeOf: () => answer('sizeOf', 0),
    beginWrite: () => options.write ?? answer('beginWrite', { sink: null } as unknown as StagedWrite),
  } as unknown as StorageAdapter;
  const quota = { aborted: 0 };
  const reservation = { resumedFrom: () => undefined, committed: () => undefined, aborted: () => void quota.aborted++, change: <T>(work: () => Promise<T>) => work() } as unknown as QuotaReservation;
  const quotas = {
    reserve: async (_user: User, _size: number, current: () => Promise<number | undefined>) => {
      await current();
      return reservation;
    },
    freed: () => undefined,
  } as unknown as QuotaLedger;
  const slot = { taken: 0, given: 0 };
  const slots = {
    take: () => {
      slot.taken++;
      return () => void slot.given++;
    },
  } as unknown as TransferSlots;
  const ctx = fakeSession({ logger });
  const run = runStage(new ResolveFilenameStage(storage, ctx.config, slots, quotas), ctx);
  const named = namedRequests(ctx, run);
  const request = (command: Command, raw: string, raw2?: string): Transfer => named.request(command, raw, alice, raw2);
  const { outcomeOf } = named;
  const refusal = async (transfer: Transfer): Promise<RxferError> => {
    const [event] = await outcomeOf(transfer);
    expect(event?.type).toBe('refused');
    return (event as { error: RxferError }).error;
  };
  return { ctx, lines, listCalls, quota, slot, request, outcomeOf, refusal, ...run };
};

describe('ResolveFilenameStage: each storage call is named in what a failure says', () => {
  test.each([
    ['LIST', 'list', { verb: 'LIST' }, 'd', 'cannot list d: EIO'],
    ['DOWNLOAD', 'openRead', { verb: 'DOWNLOAD' }, 'x', 'cannot read x: EIO'],
    ['UPLOAD (measuring its quota)', 'sizeOf', { verb: 'UPLOAD', size: 3 }, 'x', 'cannot store x: EIO'],
    ['UPLOAD (opening its staging file)', 'beginWrite', { verb: 'UPLOAD', size: 3 }, 'x', 'cannot store x: EIO'],
  ] as const)('%s: an errno failure is refused as "cannot <action> <name>", and logged so', async (_what, failing, command, raw, message) => {
    const { request, refusal, lines } = setup({ failing });
    const transfer = request(command as Command, raw);
    const error = await refusal(transfer);
    expect(error.code).toBe('STORAGE_FAILED');
    expect(error.message.startsWith(`${message} (`)).toBe(true);
    const action = message.split(' ')[1];
    expect(lines.some((line) => line.msg === `Storage failed to ${action} alice/${raw} without a storage code; reported as a storage failure`)).toBe(true);
  });

  test('a staging file whose folder vanished (ENOENT while storing) is a failed store, not NOT_FOUND', async () => {
    for (const failing of ['sizeOf', 'beginWrite'] as const) {
      const { request, refusal } = setup({ failing, error: errno('ENOENT') });
      const error = await refusal(request({ verb: 'UPLOAD', size: 3 }, 'x'));
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.message).toBe('cannot store x: its folder or staging file was removed meanwhile; nothing stored');
    }
  });
});

describe('ResolveFilenameStage: paged LIST options and cursors', () => {
  test('a first page asks storage for a page with no cursor at all (no "after" key)', async () => {
    const { request, outcomeOf, listCalls } = setup({ listsInPages: true });
    await outcomeOf(request({ verb: 'LIST', paged: true, after: false }, 'd'));
    expect(listCalls).toHaveLength(1);
    const { signal: _signal, ...rest } = listCalls[0]!;
    expect(rest).toStrictEqual({ jail: 'alice', limit: LIST_PAGE_ENTRIES, hash: 'sha256', page: {} });
    expect('after' in (rest.page as object)).toBe(false);
  });

  test('a cursor "/" is refused as the absolute name it is, not as an empty one', async () => {
    const { request, refusal, listCalls } = setup({ listsInPages: true });
    const error = await refusal(request({ verb: 'LIST', paged: true, after: true }, '', '/'));
    expect(error.code).toBe('NAME_INVALID');
    expect(error.message).toBe('"/": absolute paths are not allowed');
    expect(listCalls).toEqual([]);
  });
});

describe('ResolveFilenameStage: the session ends while storage opens an upload', () => {
  test('what storage gave is given back and the upload is not accepted', async () => {
    const write = deferred<StagedWrite>();
    const { request, outcomeOf, quota, slot } = setup({ write: write.promise });
    const transfer = request({ verb: 'UPLOAD', size: 3 }, 'x');
    await flush();
    expect(slot.taken).toBe(1);
    // The connection is gone: the actor releases every open transfer.
    await transfer.release();
    expect(slot.given).toBe(1);
    let suspended = 0;
    write.resolve({ sink: null, suspend: async () => (suspended++, 0) } as unknown as StagedWrite);
    expect(await outcomeOf(transfer)).toEqual([]);
    // The staging file begun after the end is suspended (kept for a resume or dropped), not left open.
    expect(suspended).toBe(1);
    expect(transfer.staged).toBeUndefined();
    expect(quota.aborted).toBeGreaterThanOrEqual(1);
  });
});
