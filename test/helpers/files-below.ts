import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every file below `dir`, as sorted relative paths ("a/b.txt"), leaving out the server's own `.rxfer`
 * at the top (staging, digest logs). A folder that is not there (yet) has none: for tests that look
 * at a tree while a process is still writing it, or after one was killed.
 */
export const filesBelow = (dir: string, prefix = ''): string[] => {
  let entries;
  try {
    entries = readdirSync(join(dir, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const entry of entries) {
    if (prefix === '' && entry.name === '.rxfer') continue;
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) found.push(...filesBelow(dir, relative));
    else found.push(relative);
  }
  return found.sort();
};
