import { readdir } from 'node:fs/promises';
import { normalize } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import { printableBytes } from './printable-bytes';
import { isUnfinishedDownloadName } from './staging-file';

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
 * followed (a link out of the tree is not the tree), and this client's unfinished downloads are not
 * files of the tree (isUnfinishedDownloadName).
 */
export const walkFiles = (folder: string): AsyncGenerator<WalkedFile> => walkBelow(folder, pathPrefixOf(folder), '');

/**
 * What a path below `folder` starts with: as path.join(folder, name) would give it, computed once
 * rather than per file (join normalizes every path again: ≈ 10 % of a re-run of 20,000 files).
 */
const pathPrefixOf = (folder: string): string => {
  const normal = normalize(folder);
  if (normal === '.' || normal === './') return '';
  return normal.endsWith('/') ? normal : `${normal}/`;
};

async function* walkBelow(folder: string, pathPrefix: string, prefix: string): AsyncGenerator<WalkedFile> {
  const entries = (await readdir(folder, { withFileTypes: true })).map((entry) => ({ entry, key: entry.name.normalize('NFC') }));
  if (entries.some(({ entry }) => entry.name.includes('\uFFFD'))) await refuseInvalidUtf8(folder, pathPrefix);
  entries.sort(byWireName);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.key === entries[i - 1]!.key) throw twins(pathPrefix + entries[i - 1]!.entry.name, pathPrefix + entries[i]!.entry.name);
  }
  for (const { entry } of entries) {
    // A name from readdir is one plain segment (never "", ".", ".." or with "/"): nothing to normalize.
    const path = pathPrefix + entry.name;
    const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* walkBelow(path, `${path}/`, name);
    else if (entry.isFile() && !isUnfinishedDownloadName(entry.name)) yield { path, name };
  }
}

/**
 * Two names of one folder that differ only in Unicode normalization (an NFC "é" and an NFD "e" +
 * accent, as macOS writes them) are one name on the server: sent both, one would silently replace the
 * other while the copy reported both stored.
 */
const twins = (a: string, b: string): RxferError =>
  new RxferError('NAME_CONFLICT', `${printableName(a)} and ${printableName(b)} are one name on the server (the same letters, written two ways in Unicode): rename one of them`, { path: b });

/**
 * readdir decodes names as UTF-8 and turns bytes that are not into U+FFFD: the path built from such a
 * name reads another file (one really named with U+FFFD) or none. A U+FFFD in a name is rare, so only
 * then is the folder read again as bytes, to refuse a name that is not UTF-8 (the server stores only
 * UTF-8 names) rather than send the wrong file under it.
 */
const refuseInvalidUtf8 = async (folder: string, pathPrefix: string): Promise<void> => {
  for (const raw of await readdir(folder, { encoding: 'buffer' })) {
    if (Buffer.from(raw.toString('utf8'), 'utf8').equals(raw)) continue;
    const shown = printableBytes(raw);
    throw new RxferError('NAME_INVALID', `${printableName(pathPrefix)}${shown} cannot be sent: its name is not valid UTF-8 (the server stores UTF-8 names only); rename it`, { path: pathPrefix + shown });
  }
};
