/** Wire-level constants of protocol v1. Limits that an operator may tune live in the config schema. */
export const PROTOCOL_VERSION = 'rxfer/1';

/**
 * Longest name on the wire, in bytes of UTF-8, and longest single segment (ext4/xfs NAME_MAX). 4095,
 * so that a name's line with its `\n` fits the default max-line of 4096: a name of 4096 bytes passed
 * this check and was then refused as LINE_TOO_LONG, which closes the connection (and in a BATCH fails
 * the files after it). Linux takes no longer path anyway (PATH_MAX 4096 with its NUL).
 */
export const MAX_NAME_BYTES = 4095;
export const MAX_SEGMENT_BYTES = 255;

/** A digest on the wire: 256 bits in hex, whichever algorithm (SHA-256, BLAKE3) the session uses. */
export const DIGEST_HEX = /^[0-9a-f]{64}$/i;

/** A byte count on the wire: plain decimal, no sign, no leading zeros, within Number's exact range. */
export const parseByteCount = (text: string): number | undefined => {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
};

/**
 * A BATCH (greeting `batch-files`, `batch-bytes`): at most this many files and, together, bytes. The
 * server holds a batch's files in memory until they are committed, at most REQUEST_BUDGET.batches of
 * them per connection: 4 MiB.
 */
export const BATCH_LIMITS = { files: 64, bytes: 1024 * 1024 } as const;
