import { RxferError } from '../../../src/errors/rxfer-error';
import { isUnsynced, notDurable, outsideTheRoot, storageError, syncAfterChange, unsyncedChange, unsyncedWithMore } from '../../../src/storage/storage-errors';

/** errno → storage code, with messages that name the remote file and never a server path. */
describe('storageError', () => {
  const errno = (code: string | undefined, message = `${code}: some words, open '/srv/secret/path'`) => Object.assign(new Error(message), { code });

  test.each([
    ['ELOOP', 'store', "cannot store a/b.txt: the server's own folder .rxfer/staging cannot be used (it, or a folder above it, is a symbolic link now: ELOOP); nothing stored"],
    ['ELOOP', 'stage', "cannot store a/b.txt: the server's own folder .rxfer/staging cannot be used (it, or a folder above it, is a symbolic link now: ELOOP); nothing stored"],
    ['ENOENT', 'store', "cannot store a/b.txt: the server's own folder .rxfer/staging cannot be used (ENOENT (some words)); nothing stored"],
    ['ENOTDIR', 'delete the kept upload of', "cannot delete the kept upload of a/b.txt: the server's own folder .rxfer/staging cannot be used (ENOTDIR (some words))"],
  ])("one of the server's own folders failing (%s, %s): STORAGE_FAILED about that folder, never about the name", (code, action, message) => {
    // Marked by openServerFolderSync (fd-paths.js), ELOOP's link mark cleared: not a link on the name's way.
    const failure = Object.assign(errno(code), { linkOnTheWay: false, serverFolder: '.rxfer/staging' });
    expect(storageError(failure, action, 'a/b.txt')).toMatchObject({ code: 'STORAGE_FAILED', message, detail: { errno: code } });
  });

  test('an RxferError passes through unchanged', () => {
    const err = new RxferError('BUSY', 'busy');
    expect(storageError(err, 'store', 'x')).toBe(err);
  });

  test.each([
    ['ENOSPC', 'NO_SPACE', 'no space left to store a/b.txt'],
    ['EDQUOT', 'NO_SPACE', 'no space left to store a/b.txt'],
    ['EEXIST', 'EXISTS', 'a/b.txt already exists'],
    ['EISDIR', 'NAME_CONFLICT', 'cannot store a/b.txt: a folder and a file would share a name'],
    ['ENOTDIR', 'NAME_CONFLICT', 'cannot store a/b.txt: a folder and a file would share a name'],
    ['ENOTEMPTY', 'NAME_CONFLICT', 'cannot store a/b.txt: a folder and a file would share a name'],
    ['ELOOP', 'NAME_INVALID', 'a/b.txt is a symbolic link; rxfer does not follow links'],
    ['ENAMETOOLONG', 'NAME_INVALID', 'a/b.txt is too long for this file system'],
    ['ENOENT', 'STORAGE_FAILED', 'cannot store a/b.txt: its folder or staging file was removed meanwhile; nothing stored'],
    ['EIO', 'STORAGE_FAILED', 'cannot store a/b.txt: EIO (some words)'],
  ])('%s while storing → %s', (code, expected, message) => {
    const mapped = storageError(errno(code), 'store', 'a/b.txt');
    expect(mapped).toBeInstanceOf(RxferError);
    expect(mapped).toMatchObject({ code: expected, message });
    expect(mapped.message).not.toContain('/srv');
  });

  test('the errno is kept in the detail where it says more than the code', () => {
    expect(storageError(errno('ENOSPC'), 'store', 'x').detail).toEqual({ errno: 'ENOSPC' });
    expect(storageError(errno('EISDIR'), 'store', 'x').detail).toEqual({ errno: 'EISDIR' });
    expect(storageError(errno('ELOOP'), 'store', 'x').detail).toEqual({ errno: 'ELOOP' });
    expect(storageError(errno('ENAMETOOLONG'), 'store', 'x').detail).toEqual({ errno: 'ENAMETOOLONG' });
    expect(storageError(errno('ENOENT'), 'store', 'x').detail).toEqual({ errno: 'ENOENT' });
    expect(storageError(errno('EIO'), 'store', 'x').detail).toEqual({ errno: 'EIO' });
  });

  test('ELOOP of a folder on the way that is a link now (fd-paths.js marks it) is told in the folder check\'s words, not as the name being a link', () => {
    const onTheWay = Object.assign(errno('ELOOP'), { linkOnTheWay: true });
    expect(storageError(onTheWay, 'store', 'd/x')).toMatchObject({ code: 'NAME_INVALID', message: 'd/x resolves outside the storage root' });
    expect(storageError(onTheWay, 'store', 'd/x')).toEqual(outsideTheRoot('d/x'));
    // Only the mark itself: a truthy look-alike is not it.
    expect(storageError(Object.assign(errno('ELOOP'), { linkOnTheWay: 'yes' }), 'store', 'd/x').message).toBe('d/x is a symbolic link; rxfer does not follow links');
  });

  test('ENOENT outside a store is NOT_FOUND', () => {
    expect(storageError(errno('ENOENT'), 'delete', 'gone.txt')).toMatchObject({ code: 'NOT_FOUND', message: 'gone.txt does not exist', detail: undefined });
  });

  test('the action is named', () => {
    expect(storageError(errno('ENOSPC'), 'stage', 'x').message).toBe('no space left to stage x');
    expect(storageError(errno('EIO'), 'rename', 'x').message).toBe('cannot rename x: EIO (some words)');
  });

  test('no code: UNKNOWN; a message without the errno form: the code alone', () => {
    expect(storageError(new Error('boom'), 'store', 'x')).toMatchObject({ code: 'STORAGE_FAILED', message: 'cannot store x: UNKNOWN', detail: { errno: 'UNKNOWN' } });
    expect(storageError(errno('EIO', 'something else: entirely'), 'store', 'x').message).toBe('cannot store x: EIO');
    expect(storageError(errno('EIO', 'prefix EIO: words'), 'store', 'x').message).toBe('cannot store x: EIO');
    expect(storageError(errno('EIO', 'EIO: '), 'store', 'x').message).toBe('cannot store x: EIO');
    expect(storageError(errno('EACCES', 'EACCES: permission denied'), 'store', 'x').message).toBe('cannot store x: EACCES (permission denied)');
    expect(storageError({ code: 'E2BIG' }, 'store', 'x').message).toBe('cannot store x: E2BIG');
    expect(storageError(undefined, 'store', 'x').message).toBe('cannot store x: UNKNOWN');
  });
});

/** A change made whose folder fsync failed: the reply says what was done, and a quota counts it. */
describe('NOT_DURABLE', () => {
  const eio = () => Object.assign(new Error("EIO: i/o error, fsync '/srv/secret/folder'"), { code: 'EIO' });

  test('notDurable says what was done, the errno in words, never a server path; its detail keeps the counts', () => {
    const err = notDurable(eio(), 'a/b.txt is stored', { replacedBytes: 12 });
    expect(err).toBeInstanceOf(RxferError);
    expect(err).toMatchObject({
      code: 'NOT_DURABLE',
      message: 'a/b.txt is stored, but its folder could not be synced (EIO (i/o error)): a crash of the server could still undo that',
      detail: { errno: 'EIO', replacedBytes: 12 },
    });
    expect(notDurable(undefined, 'x is deleted')).toMatchObject({ message: 'x is deleted, but its folder could not be synced (UNKNOWN): a crash of the server could still undo that', detail: { errno: 'UNKNOWN' } });
  });

  test('syncAfterChange: a sync that succeeds is silent; one that fails is NOT_DURABLE with the detail given', async () => {
    await expect(syncAfterChange(async () => undefined, 'x is stored')).resolves.toBeUndefined();
    await expect(syncAfterChange(() => Promise.reject(eio()), 'x is stored', { replacedBytes: 3 })).rejects.toMatchObject({ code: 'NOT_DURABLE', detail: { errno: 'EIO', replacedBytes: 3 } });
  });

  test('isUnsynced: a NOT_DURABLE RxferError only', () => {
    expect(isUnsynced(notDurable(eio(), 'x is stored'))).toBe(true);
    expect(isUnsynced(new RxferError('STORAGE_FAILED', 'cannot store x: EIO'))).toBe(false);
    expect(isUnsynced(Object.assign(new Error('x'), { code: 'NOT_DURABLE' }))).toBe(false);
    expect(isUnsynced(undefined)).toBe(false);
  });

  test('unsyncedWithMore: the same error, message and other detail, counting more under its key', () => {
    const err = notDurable(eio(), 'x is deleted', { removedBytes: 9 });
    const more = unsyncedWithMore(err, 'removedBytes', 5);
    expect(more).toBeInstanceOf(RxferError);
    expect(more).toMatchObject({ code: 'NOT_DURABLE', message: err.message, detail: { errno: 'EIO', removedBytes: 14 } });
    expect(unsyncedWithMore(new RxferError('NOT_DURABLE', 'x is stored, but…'), 'replacedBytes', 3).detail).toEqual({ replacedBytes: 3 });
  });

  test('unsyncedChange: the count of a NOT_DURABLE (0 without one), undefined for any other failure', () => {
    expect(unsyncedChange(notDurable(eio(), 'x is stored', { replacedBytes: 7 }), 'replacedBytes')).toBe(7);
    expect(unsyncedChange(notDurable(eio(), 'x is deleted', { removedBytes: 9 }), 'removedBytes')).toBe(9);
    expect(unsyncedChange(notDurable(eio(), 'x is stored', { removedBytes: 9 }), 'replacedBytes')).toBe(0);
    expect(unsyncedChange(new RxferError('STORAGE_FAILED', 'cannot store x: EIO', { replacedBytes: 7 }), 'replacedBytes')).toBeUndefined();
    expect(unsyncedChange(Object.assign(new Error('x'), { code: 'NOT_DURABLE', detail: { replacedBytes: 7 } }), 'replacedBytes')).toBeUndefined();
    expect(unsyncedChange(undefined, 'replacedBytes')).toBeUndefined();
    // A NOT_DURABLE without detail (another adapter's): done, with nothing to count.
    expect(unsyncedChange(new RxferError('NOT_DURABLE', 'x is stored, but…'), 'replacedBytes')).toBe(0);
  });
});
