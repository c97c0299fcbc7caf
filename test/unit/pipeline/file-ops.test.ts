import '../session/support/fail-fast';
import { firstValueFrom, of, toArray } from 'rxjs';
import type { QuotaLedger } from '../../../src/auth/quota-ledger';
import type { User } from '../../../src/auth/user';
import { FileOpsStage } from '../../../src/pipeline/stages/file-ops.stage';
import type { Command } from '../../../src/protocol/command';
import type { SessionEvent } from '../../../src/session/session-event';
import type { StorageAdapter } from '../../../src/storage/storage-adapter';
import { notDurable } from '../../../src/storage/storage-errors';
import { fakeSession, settlesNow } from '../session/support/fake-session';

const H = '12'.repeat(32);
const alice: User = { name: 'alice', role: 'write', root: 'alice', quotaBytes: 1000 };
const eio = () => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });

/** Storage that records each call and answers as told; `fail` makes every call fail with EIO. */
const fakeStorage = (options: { fail?: boolean; failWith?: () => unknown; partial?: boolean | 'absent' } = {}) => {
  const calls: unknown[][] = [];
  const answer = <T>(call: unknown[], value: T): Promise<T> => {
    calls.push(call);
    if (options.failWith) return Promise.reject(options.failWith());
    return options.fail ? Promise.reject(eio()) : Promise.resolve(value);
  };
  const storage = {
    stat: (name: string, scope: unknown) => answer(['stat', name, scope], { type: 'file', size: 3, digest: H, mtimeMs: 9 }),
    remove: (name: string, scope: unknown) => answer(['remove', name, scope], 42),
    rename: (from: string, to: string, scope: unknown) => answer(['rename', from, to, scope], undefined),
    makeFolder: (name: string, scope: unknown) => answer(['makeFolder', name, scope], undefined),
    ...(options.partial !== 'absent' && {
      partialUpload: (name: string, scope: unknown) => answer(['partialUpload', name, scope], options.partial ? { bytes: 7, digest: H } : undefined),
    }),
  } as unknown as StorageAdapter;
  return { storage, calls };
};

const setup = (options: Parameters<typeof fakeStorage>[0] = {}) => {
  const { storage, calls } = fakeStorage(options);
  const freed: unknown[][] = [];
  const quotas = { freed: (user: User, bytes: number) => freed.push([user.name, bytes]), change: <T>(_user: User, work: () => Promise<T>) => work() } as unknown as QuotaLedger;
  const ctx = fakeSession();
  const stage = new FileOpsStage(storage, quotas);
  const named = (command: Command, raw: string, raw2?: string) => {
    const transfer = ctx.beginTransfer(command);
    transfer.user = alice;
    const event: SessionEvent = { type: 'named', transfer, raw: Buffer.from(raw), ...(raw2 !== undefined && { raw2: Buffer.from(raw2) }) };
    return { transfer, event };
  };
  /** Runs one event through the stage and resolves the outcome of its pending event. */
  const run = async (event: SessionEvent) => {
    const [out] = await firstValueFrom(of(event).pipe((e$) => stage.apply(e$, ctx), toArray()));
    if (out?.type !== 'pending') return { passed: out };
    return { outcome: await out.outcome };
  };
  return { ctx, calls, freed, named, run };
};

const scope = { jail: 'alice', hash: 'sha256' };

describe('FileOpsStage', () => {
  test('other requests and events pass untouched', async () => {
    const { named, run } = setup();
    const { event } = named({ verb: 'DOWNLOAD' }, 'x');
    expect((await run(event)).passed).toBe(event);
    const shutdown: SessionEvent = { type: 'shutdown' };
    expect((await run(shutdown)).passed).toBe(shutdown);
  });

  test("STAT: the file's status, the name inside the user's root, the scope of the user and hash", async () => {
    const { named, run, calls } = setup();
    const { transfer, event } = named({ verb: 'STAT' }, 'a/b');
    expect((await run(event)).outcome).toEqual([{ type: 'accepted', transfer }]);
    expect(transfer.name).toBe('a/b');
    expect(transfer.opReply).toEqual({ kind: 'stat', type: 'file', size: 3, digest: H, mtimeMs: 9 });
    expect(calls).toEqual([['stat', 'alice/a/b', scope]]);
  });

  test('DELETE: removed, and what it freed given back to the quota', async () => {
    const { named, run, calls, freed } = setup();
    const { transfer, event } = named({ verb: 'DELETE' }, 'x');
    await run(event);
    expect(transfer.opReply).toEqual({ kind: 'done', what: 'deleted' });
    expect(calls).toEqual([['remove', 'alice/x', scope]]);
    expect(freed).toEqual([['alice', 42]]);
  });

  test('RENAME: both names inside the root', async () => {
    const { named, run, calls } = setup();
    const { transfer, event } = named({ verb: 'RENAME' }, 'old', 'new/name');
    await run(event);
    expect(transfer.opReply).toEqual({ kind: 'done', what: 'renamed' });
    expect(calls).toEqual([['rename', 'alice/old', 'alice/new/name', scope]]);
  });

  test('MKDIR: the folder made', async () => {
    const { named, run, calls } = setup();
    const { transfer, event } = named({ verb: 'MKDIR' }, 'd');
    await run(event);
    expect(transfer.opReply).toEqual({ kind: 'done', what: 'created' });
    expect(calls).toEqual([['makeFolder', 'alice/d', scope]]);
  });

  test('RESUME: the kept bytes and their digest', async () => {
    const { named, run, calls } = setup({ partial: true });
    const { transfer, event } = named({ verb: 'RESUME' }, 'big');
    await run(event);
    expect(transfer.opReply).toEqual({ kind: 'partial', bytes: 7, digest: H });
    expect(calls).toEqual([['partialUpload', 'alice/big', scope]]);
  });

  test.each([
    ['nothing is kept', undefined],
    ['the storage keeps no partial uploads', 'absent' as const],
  ])('RESUME when %s: NOT FOUND, in the user\'s own names', async (_label, partial) => {
    const { named, run } = setup({ partial });
    const { transfer, event } = named({ verb: 'RESUME' }, 'big');
    const { outcome } = await run(event);
    expect(outcome).toEqual([{ type: 'refused', transfer, error: transfer.refusal }]);
    expect(transfer.refusal?.code).toBe('NOT_FOUND');
    expect(transfer.refusal?.message).toBe('no interrupted upload of big is kept');
  });

  test.each<[Command, string]>([
    [{ verb: 'STAT' }, 'cannot stat x: EIO (i/o error)'],
    [{ verb: 'DELETE' }, 'cannot delete x: EIO (i/o error)'],
    [{ verb: 'RENAME' }, 'cannot rename x: EIO (i/o error)'],
    [{ verb: 'MKDIR' }, 'cannot create x: EIO (i/o error)'],
    [{ verb: 'RESUME' }, 'cannot read the kept upload of x: EIO (i/o error)'],
  ])('%j failing in storage is refused with its action, in the user\'s names', async (command, message) => {
    const { named, run, freed } = setup({ fail: true, partial: true });
    const { transfer, event } = named(command, 'x', command.verb === 'RENAME' ? 'y' : undefined);
    const { outcome } = await run(event);
    expect(outcome).toEqual([{ type: 'refused', transfer, error: transfer.refusal }]);
    expect(transfer.refusal?.code).toBe('STORAGE_FAILED');
    expect(transfer.refusal?.message).toBe(message);
    expect(freed).toEqual([]);
  });

  test('DELETE answered NOT_DURABLE (deleted, its folder not synced): refused with that error, and what it removed freed', async () => {
    const unsynced = () => notDurable(eio(), 'alice/x is deleted', { removedBytes: 42 });
    const { named, run, freed } = setup({ failWith: unsynced });
    const { transfer, event } = named({ verb: 'DELETE' }, 'x');
    await run(event);
    expect(transfer.refusal).toMatchObject({ code: 'NOT_DURABLE', message: 'x is deleted, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that' });
    expect(freed).toEqual([['alice', 42]]);
  });

  test('an invalid name is refused before storage is asked', async () => {
    const { named, run, calls } = setup();
    const { transfer, event } = named({ verb: 'DELETE' }, '../etc');
    await run(event);
    expect(transfer.refusal?.code).toBe('NAME_INVALID');
    const rename = named({ verb: 'RENAME' }, 'ok', '/abs');
    await run(rename.event);
    expect(rename.transfer.refusal?.code).toBe('NAME_INVALID');
    expect(calls).toEqual([]);
  });

  test('it waits for earlier requests on either name, and does nothing once the connection is gone', async () => {
    const { ctx, named, run, calls } = setup();
    const earlier = ctx.beginTransfer({ verb: 'UPLOAD', size: 1 });
    void ctx.earlierRequestsOn('alice/new', earlier);
    const { event } = named({ verb: 'RENAME' }, 'old', 'new');
    const pending = run(event);
    expect(await settlesNow(pending)).toBe(false);
    expect(calls).toEqual([]);
    earlier.settle();
    await pending;
    expect(calls).toHaveLength(1);

    const blocker = ctx.beginTransfer({ verb: 'UPLOAD', size: 1 });
    void ctx.earlierRequestsOn('alice/gone', blocker);
    const late = named({ verb: 'DELETE' }, 'gone');
    const waiting = run(late.event);
    await late.transfer.release();
    blocker.settle();
    expect((await waiting).outcome).toEqual([]);
    expect(calls).toHaveLength(1);
  });
});

