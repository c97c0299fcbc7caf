/**
 * The two orders rxfer's storages list pages in (PROTOCOL.md, LIST): path segment by segment, each
 * by UTF-16 code units as JS compares (local and memory storage: a depth-first walk, each folder's
 * entries by name), and UTF-8 bytes of the whole name (S3's keys). They differ where a name goes on
 * with a character below "/" (`a-b`, `a.txt` against `a/x`) and for characters beyond U+FFFF.
 */
export const compareSegments = (a: string, b: string): number => {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
};

/** UTF-8 bytes (the same as code points). */
export const compareBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
