import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Everything under `folder` that is not a folder (files, links, FIFOs, sockets), as "a/b" paths,
 * sorted; [] for a folder that is not there. What the hostile get -r passes compare with what
 * should have been written, and where.
 */
export const filesUnder = (folder: string): string[] => {
  const out: string[] = [];
  const walk = (dir: string, prefix: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(join(dir, entry.name), rel);
      else out.push(rel);
    }
  };
  walk(folder, '');
  return out.sort();
};
