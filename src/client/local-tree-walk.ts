import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A regular file below the folder walked: its path here, and its name relative to that folder. */
export interface WalkedFile {
  readonly path: string;
  readonly name: string;
}

/** The NFC form, as sent: a folder's entries in the order the server lists their names. */
const byWireName = (a: { readonly key: string }, b: { readonly key: string }): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * Regular files below `folder`, one at a time, depth first with each folder's entries by name: the
 * order local storage lists them in (name-order.ts), so that `put -r` can compare with the server's
 * pages as it goes. Holds one folder's entries per level, never the tree (issue 17). Links are not
 * followed (a link out of the tree is not the tree).
 */
export const walkFiles = (folder: string): AsyncGenerator<WalkedFile> => walkBelow(folder, '');

async function* walkBelow(folder: string, prefix: string): AsyncGenerator<WalkedFile> {
  const entries = (await readdir(folder, { withFileTypes: true })).map((entry) => ({ entry, key: entry.name.normalize('NFC') }));
  entries.sort(byWireName);
  for (const { entry } of entries) {
    const path = join(folder, entry.name);
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* walkBelow(path, name);
    else if (entry.isFile()) yield { path, name };
  }
}
