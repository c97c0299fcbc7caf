/**
 * Bytes as a user can read them in a message: printable ASCII kept, every other byte as \xNN (a name
 * that is not UTF-8, what a peer that is not an rxfer server sent first).
 */
export const printableBytes = (bytes: Uint8Array): string =>
  [...bytes].map((byte) => (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`)).join('');
