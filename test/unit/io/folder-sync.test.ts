import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderSync } from '../../../src/io/folder-sync';
import { clientFolders, clientFsync } from '../../../src/io/quick-fsync';

/**
 * FolderSync's group commit (src/io/folder-sync.ts): a rename is durable once its folder is fsynced
 * after it. Renames whose sync is asked for while one is queued share it; one asked for while an
 * fsync runs gets a follow-up that starts after it; `gather` holds a queued fsync so that more can
 * join. The fsync itself is a recording stand-in here: what is tested is which fsync serves whom.
 */

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An fsync stand-in that records each call and settles when the test says. */
const recorder = () => {
  const calls: { folder: string; settle: (err?: Error) => void }[] = [];
  const fsync = (folder: string) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ folder, settle: (err) => (err ? reject(err) : resolve()) });
    });
  return { calls, fsync };
};

test('with gather until the next turn: syncs asked for in one turn, one microtask after another, share one fsync', async () => {
  const { calls, fsync } = recorder();
  const syncs = new FolderSync(fsync, turn);
  const done: number[] = [];
  // As get -r commits the small files of one socket read: each in a later microtask of the same turn.
  const asks = [0, 1, 2, 3].map(async (i) => {
    for (let k = 0; k < i * 3; k++) await Promise.resolve();
    await syncs.sync('/d');
    done.push(i);
  });
  await turn();
  await turn();
  expect(calls.map((call) => call.folder)).toEqual(['/d']);
  expect(done).toEqual([]);
  calls[0]!.settle();
  await Promise.all(asks);
  expect(done.sort()).toEqual([0, 1, 2, 3]);
  expect(calls.length).toBe(1);
});

test('without gather, a sync asked for a few microtasks later has an fsync of its own', async () => {
  const { calls, fsync } = recorder();
  const syncs = new FolderSync(fsync);
  const first = syncs.sync('/d');
  for (let k = 0; k < 5; k++) await Promise.resolve();
  expect(calls.length).toBe(1);
  const second = syncs.sync('/d');
  calls[0]!.settle();
  await first;
  await turn();
  expect(calls.length).toBe(2);
  calls[1]!.settle();
  await second;
});

test('a sync asked for while an fsync runs is not served by it: a follow-up starts after it, shared by all who ask meanwhile', async () => {
  const { calls, fsync } = recorder();
  const syncs = new FolderSync(fsync, turn);
  const first = syncs.sync('/d');
  await turn();
  await turn();
  expect(calls.length).toBe(1);
  let laterDone = 0;
  const later = [syncs.sync('/d'), syncs.sync('/d')].map((p) => p.then(() => laterDone++));
  await turn();
  await turn();
  // The running fsync may have started before their renames: they wait for the next one.
  expect(calls.length).toBe(1);
  calls[0]!.settle();
  await first;
  await turn();
  await turn();
  expect(laterDone).toBe(0);
  expect(calls.length).toBe(2);
  calls[1]!.settle();
  await Promise.all(later);
  expect(laterDone).toBe(2);
});

test('folders are synced apart; a failed fsync fails every sync it served, and the next sync tries again', async () => {
  const { calls, fsync } = recorder();
  const syncs = new FolderSync(fsync, turn);
  const a1 = syncs.sync('/a');
  const a2 = syncs.sync('/a');
  const b = syncs.sync('/b');
  await turn();
  await turn();
  expect(calls.map((call) => call.folder).sort()).toEqual(['/a', '/b']);
  calls.find((call) => call.folder === '/a')!.settle(Object.assign(new Error('EIO'), { code: 'EIO' }));
  calls.find((call) => call.folder === '/b')!.settle();
  await expect(a1).rejects.toMatchObject({ code: 'EIO' });
  await expect(a2).rejects.toMatchObject({ code: 'EIO' });
  await expect(b).resolves.toBeUndefined();
  const again = syncs.sync('/a');
  await turn();
  await turn();
  expect(calls.length).toBe(3);
  calls[2]!.settle();
  await expect(again).resolves.toBeUndefined();
});

test('the client`s folder syncs (get -r`s commits) asked for in one turn share one real fsync of the folder', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'rxfer-folder-sync-'));
  const fsyncs = jest.spyOn(clientFsync, 'folder');
  try {
    const asks = [0, 1, 2, 3].map(async (i) => {
      for (let k = 0; k < i * 3; k++) await Promise.resolve();
      await clientFolders.sync(folder);
    });
    await Promise.all(asks);
    expect(fsyncs.mock.calls).toEqual([[folder]]);
  } finally {
    fsyncs.mockRestore();
    rmSync(folder, { recursive: true, force: true });
  }
});
