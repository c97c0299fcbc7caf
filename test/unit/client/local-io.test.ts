import { cannotSyncAFolder, downloadNotDurable, localIoError, syncAfterDownload } from '../../../src/client/local-io';
import { RxferError } from '../../../src/errors/rxfer-error';

/**
 * How the client words a local failure (src/client/local-io.ts): the errno in words where it has
 * some, Node's own message without the code and path it repeats otherwise, and the download whose
 * folder fsync failed after its rename (NOT_DURABLE, or nothing where folders cannot be synced).
 */

const errno = (code: string, message: string): NodeJS.ErrnoException => Object.assign(new Error(message), { code });

describe('localIoError', () => {
  test("a known errno in words; Node's message stripped of its code and its path otherwise", () => {
    expect(localIoError(errno('ENOSPC', "ENOSPC: no space left on device, write '/x'"), 'write', '/dl/x', '/dl/x was not changed').message).toBe(
      'cannot write /dl/x: the disk is full (ENOSPC, no space left on device); /dl/x was not changed',
    );
    expect(localIoError(errno('EIO', "EIO: i/o error, fsync '/dl/.x.rxfer-part-1'"), 'fsync', '/dl/.x.rxfer-part-1').message).toBe('cannot fsync /dl/.x.rxfer-part-1: EIO i/o error');
  });

  test("the system call a descriptor's failure ends with is left out (Node: 'EIO: i/o error, fsync')", () => {
    const err = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' });
    expect(localIoError(err, 'fsync', '/dl/x').message).toBe('cannot fsync /dl/x: EIO i/o error');
    // Only the call's own name, at the end.
    expect(localIoError(Object.assign(new Error('EIO: i/o error, fsync now'), { code: 'EIO', syscall: 'fsync' }), 'fsync', '/x').message).toBe('cannot fsync /x: EIO i/o error, fsync now');
  });

  test('a message without a code in front or a path at the end is kept whole', () => {
    const err = localIoError(new Error('the device said ABC: no'), 'read', '/x');
    expect(err.message).toBe('cannot read /x: the device said ABC: no');
    expect(err.detail).toEqual({ path: '/x' });
    expect(localIoError(new Error("gone, open 'a' for good"), 'read', '/x').message).toBe("cannot read /x: gone, open 'a' for good");
  });

  test('the cause is kept; an RxferError passes through as it is', () => {
    const cause = errno('EIO', 'EIO: i/o error');
    expect(localIoError(cause, 'read', '/x').cause).toBe(cause);
    const already = new RxferError('LOCAL_IO', 'said before');
    expect(localIoError(already, 'read', '/x')).toBe(already);
  });
});

describe('a download renamed into place whose folder fsync failed', () => {
  test('NOT_DURABLE, saying the file is there, with the errno and the cause', () => {
    const cause = errno('EIO', "EIO: i/o error, fsync '/dl'");
    const err = downloadNotDurable(cause, '/dl/a.bin')!;
    expect(err).toBeInstanceOf(RxferError);
    expect(err.code).toBe('NOT_DURABLE');
    expect(err.message).toBe('/dl/a.bin is saved, whole and verified, but its folder could not be synced (EIO i/o error): a crash of this machine could still undo that');
    expect(err.detail).toEqual({ path: '/dl/a.bin', errno: 'EIO' });
    expect(err.cause).toBe(cause);
  });

  test('a failure without an errno: still NOT_DURABLE, naming the file', () => {
    const err = downloadNotDurable(new Error('the file system hung up'), '/dl/a.bin')!;
    expect(err.message).toBe('/dl/a.bin is saved, whole and verified, but its folder could not be synced (the file system hung up): a crash of this machine could still undo that');
    expect(err.detail).toEqual({ path: '/dl/a.bin' });
  });

  test.each(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EACCES', 'EPERM'])('%s: a folder that cannot be fsynced, no error', async (code) => {
    expect(cannotSyncAFolder(errno(code, code))).toBe(true);
    expect(downloadNotDurable(errno(code, code), '/dl/a.bin')).toBeUndefined();
    await expect(syncAfterDownload(Promise.reject(errno(code, code)), '/dl/a.bin')).resolves.toBeUndefined();
  });

  test.each(['EIO', 'ENOSPC', 'EROFS', 'EBADF'])('%s is a failure to report', async (code) => {
    expect(cannotSyncAFolder(errno(code, code))).toBe(false);
    expect(cannotSyncAFolder(undefined)).toBe(false);
    await expect(syncAfterDownload(Promise.reject(errno(code, code)), '/dl/a.bin')).rejects.toMatchObject({ code: 'NOT_DURABLE', detail: { path: '/dl/a.bin', errno: code } });
    await expect(syncAfterDownload(Promise.resolve(), '/dl/a.bin')).resolves.toBeUndefined();
  });
});
