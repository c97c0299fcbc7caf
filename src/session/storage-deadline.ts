import { RxferError } from '../errors/rxfer-error';

/** Marks the error of a storage call that never answered (see `withinStorageDeadline`). */
const HUNG_DETAIL = 'storageHungMs';

/**
 * Settles like `pending`, unless storage gives no answer for `deadlineMs`: then it fails with
 * STORAGE_FAILED, so that a hung open, fsync, rename, stat or walk (a dead NFS mount, a disk that
 * stopped answering) fails its request instead of holding the connection, its transfer slot and the
 * names it claimed for ever. The call itself cannot be cancelled; if it answers after all,
 * `discardLate` gives back what it obtained (an open file, a staging file), which nobody will use.
 */
export const withinStorageDeadline = <T>(pending: Promise<T>, deadlineMs: number, what: string, discardLate?: (late: T) => unknown): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      // Whatever it brings later has no taker any more. Not "nothing done": a rename or delete that
      // was only slow still happens, and the reply must not say otherwise.
      pending.then((late) => discardLate?.(late), () => undefined).catch(() => undefined);
      reject(new RxferError('STORAGE_FAILED', `storage did not ${what} within ${deadlineMs} ms; it may still take effect, so check (STAT) before repeating`, { [HUNG_DETAIL]: deadlineMs }));
    }, deadlineMs);
    // A hung call must not keep a stopping server alive either.
    timer.unref();
  });
  return Promise.race([pending, hung]).finally(() => clearTimeout(timer));
};

/** True for the error of a call cut by `withinStorageDeadline`: its clean-up is not awaited either. */
export const isStorageHang = (err: unknown): boolean => err instanceof RxferError && err.detail?.[HUNG_DETAIL] !== undefined;
