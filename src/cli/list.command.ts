import { once } from 'node:events';
import type { RxferClient } from '../client/index';
import { RxferError } from '../errors/rxfer-error';
import type { ListingEntry } from '../protocol/listing';
import { printableName } from '../protocol/remote-name';
import type { ConnectionFlags } from './connection-options';
import { formatBytes, formatTime } from './format-units';
import { remoteFolderOf } from './remote-path';
import { withClient } from './with-client';

/** One line of `ls`: a file, or a folder (name ending in "/", no size or digest). */
export interface ListedItem {
  readonly name: string;
  readonly type: 'file' | 'folder';
  readonly size?: number;
  readonly mtimeMs?: number;
  readonly digest?: string;
}

const fileItem = ({ name, size, mtimeMs, digest }: ListingEntry): ListedItem => ({ type: 'file', name, size, mtimeMs, ...(digest !== undefined && { digest }) });

/**
 * The items of `folder`: its files, and its subfolders (known from the files below them, and from
 * the folder entries a server lists when asked). With `recursive`, everything below it.
 */
export const itemsOf = (folder: string, entries: readonly ListingEntry[], folders: readonly string[], recursive: boolean): ListedItem[] => {
  const base = folder === '' ? '' : `${folder}/`;
  const items = new Map<string, ListedItem>();
  const addFolder = (name: string) => {
    if (!items.has(name)) items.set(name, { name, type: 'folder' });
  };
  const addFoldersOf = (rest: string) => {
    const segments = rest.split('/').slice(0, -1);
    const upTo = recursive ? segments.length : Math.min(1, segments.length);
    for (let i = 1; i <= upTo; i++) addFolder(base + segments.slice(0, i).join('/'));
  };
  for (const entry of entries) {
    const rest = entry.name.slice(base.length);
    addFoldersOf(rest);
    if (recursive || !rest.includes('/')) items.set(entry.name, fileItem(entry));
  }
  for (const name of folders) addFoldersOf(`${name.slice(base.length)}/x`);
  return [...items.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
};

const humanLine = (item: ListedItem): string =>
  item.type === 'folder'
    ? `${'-'.padStart(10)}  ${'-'.padEnd(12)}  ${' '.repeat(19)}  ${printableName(item.name)}/\n`
    : `${formatBytes(item.size ?? 0).padStart(10)}  ${(item.digest ?? '-').slice(0, 12).padEnd(12)}  ${formatTime(item.mtimeMs ?? 0)}  ${printableName(item.name)}\n`;

/** The items of one page of a listing asked for with its folders (server order: each folder before what is in it). */
const itemsOfPage = (entries: readonly ListingEntry[]): ListedItem[] => entries.map((entry) => (entry.folder ? { name: entry.name, type: 'folder' } : fileItem(entry)));

/** process.stdout.write, waiting for 'drain' when it says so: a slow reader must not grow this process. */
const print = async (text: string): Promise<void> => {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
};

/**
 * `rxfer ls [NAME] [-r] [--json]`, as ls does: a folder's files and subfolders (one level, or all
 * below it with -r), a file as itself, and a missing name as an error. Names are shown in full.
 * A listing of one page (up to 20,000 entries) is printed sorted by name once it is complete. A
 * longer one (`ls -r` of a large tree) is printed page by page as the server sends it, in the
 * server's order (local storage: depth first, `a/x` before `a.txt`), holding one page at a time
 * (issue 17: 200,000 files were ≈ 250 MiB of client); if it fails part way, what was printed stays
 * and the exit status says so.
 */
export const runList = (name: string | undefined, flags: ConnectionFlags & { json?: boolean; recursive?: boolean }): Promise<number> =>
  withClient(flags, async (client: RxferClient) => {
    const folder = remoteFolderOf(name ?? '');
    const status = folder === '' ? undefined : await client.stat(folder).catch((err: unknown) => {
      if (err instanceof RxferError && err.code === 'NOT_FOUND') throw new RxferError('NOT_FOUND', `there is no file or folder named ${printableName(name!)} on the server`);
      throw err;
    });
    // Each digest names its algorithm (the connection's, --hash), so a script cannot compare the wrong kind.
    const json = (items: readonly ListedItem[]): string[] => items.map((item) => JSON.stringify(item.digest === undefined ? item : { ...item, hash: client.hash }));
    const render = (items: readonly ListedItem[]): string => (flags.json ? `[${json(items).join(',')}]\n` : items.map(humanLine).join(''));
    if (status?.type === 'file') {
      return render([{ name: folder, type: 'file', size: status.size, mtimeMs: status.mtimeMs, ...(status.digest !== undefined && { digest: status.digest }) }]);
    }
    // One level unless -r (LIST SHALLOW: the server opens only this folder, issue 17), with the
    // folders themselves (LIST FOLDERS: empty ones show too, issue 19).
    let printed = 0;
    for await (const page of client.listPages(folder, { folders: true, shallow: flags.recursive !== true })) {
      if (printed === 0 && !page.more) {
        const files = page.entries.filter((entry) => !entry.folder);
        const folders = page.entries.filter((entry) => entry.folder).map((entry) => entry.name);
        return render(itemsOf(folder, files, folders, flags.recursive === true));
      }
      const items = itemsOfPage(page.entries);
      if (flags.json) await print(json(items).map((item, i) => `${printed + i === 0 ? '[' : ','}${item}`).join(''));
      else await print(items.map(humanLine).join(''));
      printed += items.length;
    }
    return flags.json ? `${printed === 0 ? '[' : ''}]\n` : '';
  });
