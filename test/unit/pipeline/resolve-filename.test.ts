import '../session/support/fail-fast';
import { Readable } from 'node:stream';
import type { QuotaLedger, QuotaReservation } from '../../../src/auth/quota-ledger';
import type { TransferSlots } from '../../../src/auth/transfer-slots';
import type { User } from '../../../src/auth/user';
import { RxferError } from '../../../src/errors/rxfer-error';
import { startHash } from '../../../src/integrity/hash-algorithm';
import { LIST_PAGE_ENTRIES, ResolveFilenameStage } from '../../../src/pipeline/stages/resolve-filename.stage';
import type { Command } from '../../../src/protocol/command';
import type { SessionEvent } from '../../../src/session/session-event';
import type { Transfer } from '../../../src/session/transfer';
import type { ListedFile, StagedWrite, StorageAdapter } from '../../../src/storage/storage-adapter';
import { captureLogs, fakeSession, settlesNow } from '../session/support/fake-session';
import { flush, namedRequests, runStage } from './support/run-stage';

const H = '34'.repeat(32);
const alice: User = { name: 'alice', role: 'write', root: 'alice', quotaBytes: 1000 };
const admin: User = { name: 'root', role: 'admin', root: '' };

interface Options {
  readonly listed?: ListedFile[];
  readonly listsInPages?: boolean;
  readonly listsFolders?: boolean;
  readonly resumed?: { offset: number };
  readonly fail?: RxferError | Error;
  readonly slotsBusy?: boolean;
  readonly limits?: Record<string, number>;
}

const setup = (options: Options = {}) => {
  const calls: unknown[][] = [];
  const { logger, lines } = captureLogs();
  const answer = <T>(call: unknown[], value: T): Promise<T> => {
    calls.push(call);
    return options.fail ? Promise.reject(options.fail) : Promise.resolve(value);
  };
  const stream = Readable.from([]);
  const resumedHash = startHash('sha256').update(Buffer.from('kept'));
  const staged = { sink: null, ...(options.resumed && { resumed: { offset: options.resumed.offset, hash: resumedHash } }) } as unknown as StagedWrite;
  const storage = {
    listsInPages: options.listsInPages,
    listsFolders: options.listsFolders,
    list: (prefix: string, listOptions: Record<string, unknown>) => {
      const { signal, ...rest } = listOptions;
      return answer(['list', prefix, { ...rest, signal: signal instanceof AbortSignal }], options.listed ?? []);
    },
    openRead: (name: string, readOptions: unknown) => answer(['openRead', name, readOptions], { file: { name, size: 4, digest: H, mtimeMs: 1 }, stream, offset: 0 }),
    sizeOf: (name: string, scope: unknown) => answer(['sizeOf', name, scope], 7),
    beginWrite: (name: string, writeOptions: Record<string, unknown>) => {
      const { onKeptDropped, admitReplaced, ...rest } = writeOptions;
      (onKeptDropped as (bytes: number) => void)(5);
      // A quota user's commit asks the reservation again with the size it is about to replace.
      (admitReplaced as ((bytes: number) => void) | undefined)?.(4);
      return answer(['beginWrite', name, { ...rest, admitReplaced: typeof admitReplaced }], staged);
    },
  } as unknown as StorageAdapter;
  const quotaCalls: unknown[][] = [];
  const reservation = { resumedFrom: (bytes: number) => void quotaCalls.push(['resumedFrom', bytes]), admit: (bytes: number) => void quotaCalls.push(['admit', bytes]), committed: () => undefined, aborted: () => undefined, change: (work) => work() } as QuotaReservation;
  const quotas = {
    reserve: async (user: User, size: number, current: () => Promise<number | undefined>) => {
      quotaCalls.push(['reserve', user.name, size, await current()]);
      return reservation;
    },
    freed: (user: User, bytes: number) => void quotaCalls.push(['freed', user.name, bytes]),
  } as unknown as QuotaLedger;
  const slotCalls: string[] = [];
  const slots = {
    take: (user: User) => {
      if (options.slotsBusy) throw new RxferError('BUSY', `${user.name} is busy`);
      slotCalls.push(`take ${user.name}`);
      return () => slotCalls.push(`release ${user.name}`);
    },
  } as unknown as TransferSlots;
  const ctx = fakeSession({ logger, limits: { ...options.limits } });
  const stage = new ResolveFilenameStage(storage, ctx.config, slots, quotas);
  const run = runStage(stage, ctx);
  const named = namedRequests(ctx, run);
  const request = (command: Command, raw: string, user: User = alice, raw2?: string) => named.request(command, raw, user, raw2);
  const { outcomeOf } = named;
  return { ctx, calls, lines, quotaCalls, slotCalls, stream, resumedHash, request, outcomeOf, ...run };
};

const accepted = (transfer: Transfer) => [{ type: 'accepted', transfer }];
const refusal = async (events: Promise<readonly SessionEvent[]>) => {
  const [event] = await events;
  expect(event?.type).toBe('refused');
  return (event as { error: RxferError }).error;
};

describe('ResolveFilenameStage: which events it takes', () => {
  test('file operations and other events pass', () => {
    const { input, out, ctx } = setup();
    const transfer = ctx.beginTransfer({ verb: 'STAT' });
    const stat: SessionEvent = { type: 'named', transfer, raw: Buffer.from('x') };
    const shutdown: SessionEvent = { type: 'shutdown' };
    input.next(stat);
    input.next(shutdown);
    expect(out).toEqual([stat, shutdown]);
  });

  test('a download and a LIST run in the background; an upload is resolved in line', async () => {
    const { request, out } = setup();
    const download = request({ verb: 'DOWNLOAD' }, 'd');
    const list = request({ verb: 'LIST' }, 'l');
    expect(out.map((event) => event.type)).toEqual(['pending', 'pending']);
    const upload = request({ verb: 'UPLOAD', size: 3 }, 'u');
    await flush();
    expect(out.map((event) => event.type)).toEqual(['pending', 'pending', 'accepted']);
    expect([download, list, upload].map((t) => t.name)).toEqual(['d', 'l', 'u']);
  });
});

describe('ResolveFilenameStage: DOWNLOAD', () => {
  test("opens the file inside the user's root, with the resume point and hash, and takes a slot", async () => {
    const { request, outcomeOf, calls, slotCalls, stream } = setup();
    const resume = { offset: 2, digest: H };
    const transfer = request({ verb: 'DOWNLOAD', resume }, 'a/b');
    expect(await outcomeOf(transfer)).toEqual(accepted(transfer));
    expect(calls).toEqual([['openRead', 'alice/a/b', { jail: 'alice', from: resume, hash: 'sha256' }]]);
    expect(transfer.download?.stream).toBe(stream);
    expect(slotCalls).toEqual(['take alice']);
    await transfer.release();
    expect(slotCalls).toEqual(['take alice', 'release alice']);
  });

  test('BUSY from the slots refuses it, before storage is asked', async () => {
    const { request, outcomeOf, calls } = setup({ slotsBusy: true });
    const transfer = request({ verb: 'DOWNLOAD' }, 'x');
    expect((await refusal(outcomeOf(transfer))).code).toBe('BUSY');
    expect(transfer.refusal?.code).toBe('BUSY');
    expect(calls).toEqual([]);
  });

  test("a storage refusal speaks the user's names", async () => {
    const { request, outcomeOf } = setup({ fail: new RxferError('NOT_FOUND', 'alice/x does not exist') });
    const transfer = request({ verb: 'DOWNLOAD' }, 'x');
    expect((await refusal(outcomeOf(transfer))).message).toBe('x does not exist');
  });

  test('an invalid name is refused with its reason', async () => {
    const { request, outcomeOf, calls } = setup();
    const transfer = request({ verb: 'DOWNLOAD' }, '../x');
    expect((await refusal(outcomeOf(transfer))).code).toBe('NAME_INVALID');
    expect(calls).toEqual([]);
  });

  test('it waits for earlier requests on its name; a connection gone meanwhile does nothing', async () => {
    const { ctx, request, outcomeOf, calls, slotCalls } = setup();
    const earlier = ctx.beginTransfer({ verb: 'UPLOAD', size: 1 });
    void ctx.earlierRequestsOn('alice/x', earlier);
    const transfer = request({ verb: 'DOWNLOAD' }, 'x');
    const outcome = outcomeOf(transfer);
    expect(await settlesNow(outcome)).toBe(false);
    await transfer.release();
    earlier.settle();
    expect(await outcome).toEqual([]);
    expect(calls).toEqual([]);
    expect(slotCalls).toEqual([]);
  });
});

describe('ResolveFilenameStage: UPLOAD and ADDFILE', () => {
  test('reserves the quota (measuring the file replaced) and opens a staging file with the right options', async () => {
    const { request, outcomeOf, calls, quotaCalls, slotCalls } = setup();
    const transfer = request({ verb: 'UPLOAD', size: 3 }, 'u');
    expect(await outcomeOf(transfer)).toEqual(accepted(transfer));
    expect(quotaCalls).toEqual([
      ['reserve', 'alice', 3, 7],
      ['freed', 'alice', 5],
      ['admit', 4],
    ]);
    expect(calls).toEqual([
      ['sizeOf', 'alice/u', { jail: 'alice' }],
      ['beginWrite', 'alice/u', { size: 3, createOnly: false, jail: 'alice', measureReplaced: true, resume: undefined, hash: 'sha256', admitReplaced: 'function' }],
    ]);
    expect(transfer.quota).toBeDefined();
    expect(transfer.staged).toBeDefined();
    expect(slotCalls).toEqual(['take alice']);
  });

  test('ADDFILE is create-only; a user without a quota does not measure what it replaces', async () => {
    const { request, outcomeOf, calls } = setup();
    const transfer = request({ verb: 'ADDFILE', size: 3 }, 'u', admin);
    await outcomeOf(transfer);
    expect(calls.at(-1)).toEqual(['beginWrite', 'u', { size: 3, createOnly: true, jail: '', measureReplaced: false, resume: undefined, hash: 'sha256', admitReplaced: 'undefined' }]);
  });

  test('ADDFILE by a quota user reserves its whole size: it never replaces a file, so the name is not measured for credit', async () => {
    const { request, outcomeOf, calls, quotaCalls } = setup();
    const transfer = request({ verb: 'ADDFILE', size: 3 }, 'u');
    expect(await outcomeOf(transfer)).toEqual(accepted(transfer));
    expect(quotaCalls[0]).toEqual(['reserve', 'alice', 3, undefined]);
    expect(calls.map((call) => call[0])).toEqual(['beginWrite']);
  });

  test('a file over maxFileBytes is refused TOO_LARGE with the numbers; at the limit it is taken', async () => {
    const { request, outcomeOf, calls } = setup({ limits: { maxFileBytes: 10 } });
    const over = request({ verb: 'UPLOAD', size: 11 }, 'big');
    const error = await refusal(outcomeOf(over));
    expect(error.code).toBe('TOO_LARGE');
    expect(error.message).toBe('big is 11 bytes; this server accepts at most 10');
    expect(error.detail).toEqual({ size: 11, limit: 10 });
    expect(calls).toEqual([]);
    const at = request({ verb: 'UPLOAD', size: 10 }, 'ok');
    expect(await outcomeOf(at)).toEqual(accepted(at));
  });

  test('a resumed upload reserves only what is still to come, and goes on from the kept prefix', async () => {
    const { request, outcomeOf, calls, quotaCalls, resumedHash, lines } = setup({ resumed: { offset: 4 } });
    const resume = { offset: 4, digest: H };
    const transfer = request({ verb: 'UPLOAD', size: 10, resume }, 'r');
    expect(await outcomeOf(transfer)).toEqual(accepted(transfer));
    expect(quotaCalls).toEqual([
      ['reserve', 'alice', 6, 7],
      ['freed', 'alice', 5],
      ['admit', 4],
      ['resumedFrom', 4],
    ]);
    expect((calls.at(-1) as [string, string, { resume: unknown }])[2].resume).toEqual(resume);
    expect(transfer.hash).toBe(resumedHash);
    expect(transfer.received).toBe(4);
    expect(lines.find((line) => line.msg === 'Resuming upload of r at 4 of 10 bytes')).toMatchObject({ level: 30, file: 'r', offset: 4 });
  });

  test('a quota refusal refuses the upload', async () => {
    const { request, outcomeOf } = setup({ fail: new RxferError('QUOTA_EXCEEDED', 'alice uses too much') });
    const transfer = request({ verb: 'UPLOAD', size: 3 }, 'u');
    expect((await refusal(outcomeOf(transfer))).code).toBe('QUOTA_EXCEEDED');
  });
});

describe('ResolveFilenameStage: LIST', () => {
  const files: ListedFile[] = [
    { name: 'alice/a', size: 1, digest: H, mtimeMs: 5 },
    { name: 'alice/d/b', size: 2, mtimeMs: 6.9 },
    { name: 'alice/d/c', size: 3, digest: H, mtimeMs: 7 },
  ];

  test("lists the user's root, in the user's own names", async () => {
    const { request, outcomeOf, calls } = setup({ listed: files });
    const transfer = request({ verb: 'LIST' }, '');
    expect(await outcomeOf(transfer)).toEqual(accepted(transfer));
    expect(transfer.name).toBe('.');
    expect(calls).toEqual([['list', 'alice', { jail: 'alice', limit: 100_000, hash: 'sha256', signal: true }]]);
    expect(transfer.listing).toEqual({ body: Buffer.from(`1 ${H} 5 a\n2 - 6 d/b\n3 ${H} 7 d/c\n`), count: 3 });
  });

  test('a folder of an admin (root "") is listed as it is named', async () => {
    const { request, outcomeOf, calls } = setup({ listed: [{ name: 'd/x', size: 1, mtimeMs: 1 }] });
    const transfer = request({ verb: 'LIST' }, 'd', admin);
    await outcomeOf(transfer);
    expect(transfer.name).toBe('d');
    expect(calls[0]).toEqual(['list', 'd', { jail: '', limit: 100_000, hash: 'sha256', signal: true }]);
    expect(transfer.listing?.body.toString()).toBe('1 - 1 d/x\n');
  });

  test('a paged LIST on a storage that pages: at most a page, and says when there is more', async () => {
    const { request, outcomeOf, calls } = setup({ listed: files, listsInPages: true, limits: { maxListEntries: 2 } });
    const transfer = request({ verb: 'LIST', paged: true, after: false }, 'd');
    await outcomeOf(transfer);
    expect(calls[0]).toEqual(['list', 'alice/d', { jail: 'alice', limit: 2, hash: 'sha256', signal: true, page: {} }]);
    expect(transfer.listing).toEqual({ body: Buffer.from(`1 ${H} 5 a\n2 - 6 d/b\n`), count: 2, more: true });
  });

  test('a page never holds more than LIST_PAGE_ENTRIES', async () => {
    const { request, outcomeOf, calls } = setup({ listsInPages: true });
    const transfer = request({ verb: 'LIST', paged: true, after: false }, '');
    await outcomeOf(transfer);
    expect((calls[0] as [string, string, { limit: number }])[2].limit).toBe(LIST_PAGE_ENTRIES);
    expect(transfer.listing).toEqual({ body: Buffer.alloc(0), count: 0 });
  });

  test('a last page (no more than the limit) does not say more', async () => {
    const { request, outcomeOf } = setup({ listed: files.slice(0, 2), listsInPages: true, limits: { maxListEntries: 2 } });
    const transfer = request({ verb: 'LIST', paged: true, after: false }, '');
    await outcomeOf(transfer);
    expect(transfer.listing).toEqual({ body: Buffer.from(`1 ${H} 5 a\n2 - 6 d/b\n`), count: 2 });
  });

  test('a storage that cannot page lists whole, with the list limit', async () => {
    const { request, outcomeOf, calls } = setup({ listed: files, limits: { maxListEntries: 2 } });
    const transfer = request({ verb: 'LIST', paged: true, after: false }, '');
    await outcomeOf(transfer);
    expect(calls[0]).toEqual(['list', 'alice', { jail: 'alice', limit: 2, hash: 'sha256', signal: true }]);
    expect(transfer.listing?.count).toBe(3);
  });

  test('LIST AFTER goes on after the cursor (a file, in the user\'s names)', async () => {
    const { request, outcomeOf, calls } = setup({ listsInPages: true });
    const transfer = request({ verb: 'LIST', paged: true, after: true }, 'd', alice, 'd/b');
    await outcomeOf(transfer);
    expect((calls[0] as [string, string, { page: unknown }])[2].page).toEqual({ after: 'alice/d/b' });
  });

  test('LIST AFTER a folder line (its name ends in "/") goes on after that folder', async () => {
    const { request, outcomeOf, calls } = setup({ listsInPages: true, listsFolders: true });
    const transfer = request({ verb: 'LIST', paged: true, after: true, folders: true }, 'd', alice, 'd/sub/');
    await outcomeOf(transfer);
    expect(calls[0]).toEqual(['list', 'alice/d', { jail: 'alice', limit: LIST_PAGE_ENTRIES, hash: 'sha256', signal: true, page: { after: 'alice/d/sub', afterFolder: true }, folders: true }]);
  });

  test('a one-character cursor "/" is no folder cursor: it is refused as a name', async () => {
    const { request, outcomeOf } = setup({ listsInPages: true });
    const transfer = request({ verb: 'LIST', paged: true, after: true }, '', alice, '/');
    expect((await refusal(outcomeOf(transfer))).code).toBe('NAME_INVALID');
  });

  test('FOLDERS and SHALLOW reach a storage that can; one that cannot refuses with BAD_COMMAND', async () => {
    const can = setup({ listsFolders: true });
    const shallow = can.request({ verb: 'LIST', shallow: true }, '');
    await can.outcomeOf(shallow);
    expect(can.calls[0]).toEqual(['list', 'alice', { jail: 'alice', limit: 100_000, hash: 'sha256', signal: true, shallow: true }]);
    const cannot = setup();
    for (const command of [{ verb: 'LIST', folders: true }, { verb: 'LIST', shallow: true }] as Command[]) {
      const transfer = cannot.request(command, '');
      const error = await refusal(cannot.outcomeOf(transfer));
      transfer.settle(); // as emit-ack does: the next LIST of the same folder may go
      expect(error.code).toBe('BAD_COMMAND');
      expect(error.message).toBe('this server cannot LIST FOLDERS or SHALLOW (its greeting has no list-options)');
    }
    expect(cannot.calls).toEqual([]);
  });

  test("a failing LIST is refused in the user's names", async () => {
    const { request, outcomeOf } = setup({ fail: new RxferError('TOO_LARGE', 'more than 3 files under alice/d') });
    const transfer = request({ verb: 'LIST' }, 'd');
    expect((await refusal(outcomeOf(transfer))).message).toBe('more than 3 files under d');
    expect(transfer.refusal?.code).toBe('TOO_LARGE');
  });

  test('a LIST waits for earlier requests below its folder; a connection gone meanwhile lists nothing', async () => {
    const { ctx, request, outcomeOf, calls } = setup();
    const earlier = ctx.beginTransfer({ verb: 'UPLOAD', size: 1 });
    void ctx.earlierRequestsOn('alice/d/f', earlier);
    const transfer = request({ verb: 'LIST' }, 'd');
    const outcome = outcomeOf(transfer);
    expect(await settlesNow(outcome)).toBe(false);
    await transfer.release();
    earlier.settle();
    expect(await outcome).toEqual([]);
    expect(calls).toEqual([]);
  });
});
