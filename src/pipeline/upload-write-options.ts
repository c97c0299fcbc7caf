import type { QuotaLedger } from '../auth/quota-ledger';
import type { ResumePoint } from '../protocol/command';
import type { Transfer } from '../session/transfer';
import type { WriteOptions } from '../storage/storage-adapter';

/**
 * What storage is told of an upload's staging write, for an UPLOAD (resolve-filename) and a file of a
 * BATCH (store-batch) alike: the user's folder, the connection's algorithm, and, under a quota, the size
 * it replaces measured and admitted at commit; kept bytes that storage drops are given back either way.
 */
export const uploadWriteOptions = (transfer: Transfer, quotas: QuotaLedger, what: { size: number; createOnly: boolean; resume?: ResumePoint }): WriteOptions => {
  const user = transfer.user!;
  return {
    ...what,
    jail: user.root,
    measureReplaced: user.quotaBytes !== undefined,
    hash: transfer.algorithm,
    onKeptDropped: (bytes) => quotas.freed(user, bytes),
    ...(user.quotaBytes !== undefined && { admitReplaced: (bytes: number) => transfer.quota?.admit(bytes) }),
  };
};
