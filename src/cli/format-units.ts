const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Binary units, three significant digits: `512 B`, `12.3 MiB`, `1.00 GiB`. */
export const formatBytes = (bytes: number): string => {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
};

export const formatSeconds = (ms: number): string => {
  const seconds = ms / 1000;
  if (seconds < 10) return `${seconds.toFixed(seconds < 1 ? 2 : 1)} s`;
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
};

export const formatRate = (bytes: number, ms: number): string =>
  ms <= 0 ? '—' : `${formatBytes(Math.round((bytes * 1000) / ms))}/s`;

/** A digest shortened for a summary line; the full one is in the server's reply and in logs. */
export const shortDigest = (digest: string): string => `${digest.slice(0, 12)}…`;

/** A modification time as `2026-11-25 18:53:59` (UTC), for listings. */
export const formatTime = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
