/** Wire-level constants of protocol v1. Limits that an operator may tune live in the config schema. */
export const PROTOCOL_VERSION = 'rxfer/1';

/** Longest name on the wire, in bytes of UTF-8, and longest single segment (ext4/xfs NAME_MAX). */
export const MAX_NAME_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 255;

/** A digest on the wire: 256 bits in hex, whichever algorithm (SHA-256, BLAKE3) the session uses. */
export const DIGEST_HEX = /^[0-9a-f]{64}$/i;

/** A byte count on the wire: plain decimal, no sign, no leading zeros, within Number's exact range. */
export const parseByteCount = (text: string): number | undefined => {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
};
