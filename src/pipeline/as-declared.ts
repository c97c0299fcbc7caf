import { RxferError } from '../errors/rxfer-error';
import { hashLabel } from '../integrity/hash-algorithm';
import type { Trailer } from '../protocol/command';
import type { Transfer } from '../session/transfer';

/**
 * CHECKSUM_MISMATCH unless what arrived for `transfer` hashes (in the connection's algorithm) to
 * `digest` = what its sender declared: in an UPLOAD's trailer, or in a BATCH file's entry line
 * (`source`). A digest in another algorithm is refused by name, never compared.
 */
export const assertAsDeclared = (transfer: Transfer, declared: Trailer, digest: string, source: 'the trailer' | 'the BATCH entry'): void => {
  if (declared.hash !== transfer.algorithm) {
    throw new RxferError(
      'CHECKSUM_MISMATCH',
      `${source} of ${transfer.displayName} gives a ${hashLabel(declared.hash)} digest, but this connection verifies with ${hashLabel(transfer.algorithm)} (send HASH ${hashLabel(declared.hash)} before the request); nothing stored`,
    );
  }
  if (digest !== declared.digest) {
    throw new RxferError(
      'CHECKSUM_MISMATCH',
      `the ${transfer.received} bytes received for ${transfer.displayName} hash to ${digest}, not ${declared.digest} as declared (${hashLabel(transfer.algorithm)}); nothing stored`,
      { received: transfer.received, computed: digest, declared: declared.digest },
    );
  }
};
