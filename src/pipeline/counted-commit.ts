import type { QuotaReservation } from '../auth/quota-ledger';
import type { CommittedFile } from '../storage/storage-adapter';
import { unsyncedChange } from '../storage/storage-errors';

/**
 * A commit, and the quota told its outcome, as one change of the user's storage (QuotaLedger.change):
 * no measurement falls between the file taking its name and the count, and the count follows the
 * commit even when the client was told otherwise (the connection gone, or the storage deadline
 * passed first). Used by UPLOAD's commit (write-file) and by each file of a BATCH (store-batch).
 */
export const countedCommit = (quota: QuotaReservation | undefined, commit: () => Promise<CommittedFile>): Promise<CommittedFile> => {
  if (!quota) return commit();
  return quota.change(() =>
    commit().then(
      (file) => {
        quota.committed(file.replacedBytes);
        return file;
      },
      (err: unknown) => {
        // In place although its folder was not synced (NOT_DURABLE): counted as stored.
        const replaced = unsyncedChange(err, 'replacedBytes');
        if (replaced === undefined) quota.aborted(0);
        else quota.committed(replaced);
        throw err;
      },
    ),
  );
};
