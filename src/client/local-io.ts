import { promises as fsp } from 'node:fs';
import { RxferError } from '../errors/rxfer-error';

/**
 * A local file-system failure as LOCAL_IO, naming the path and the errno code so that a user can act
 * on it ("cannot open /data/x for reading: EACCES permission denied").
 */
export const localIoError = (err: unknown, action: string, path: string): RxferError => {
  if (err instanceof RxferError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const raw = err instanceof Error ? err.message : String(err);
  // Node's messages repeat the code and the path ("ENOENT: no such file or directory, open 'x'").
  const reason = raw.replace(/^[A-Z0-9_]+: /, '').replace(/, \w+ '.*'$/, '');
  const message = `cannot ${action} ${path}: ${errno ? `${errno} ` : ''}${reason}`;
  return new RxferError('LOCAL_IO', message, errno ? { path, errno } : { path }, { cause: err });
};

export const localIo = <T>(action: string, path: string, work: () => Promise<T>): Promise<T> =>
  work().catch((err: unknown) => {
    throw localIoError(err, action, path);
  });

/** Cleanup on a failure path: the original failure matters more than one about a file already gone. */
export const removeQuietly = async (path: string): Promise<void> => {
  await fsp.rm(path, { force: true }).catch(() => undefined);
};
