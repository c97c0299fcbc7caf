import { posix } from 'node:path';
import type { RxferClient } from '../client/index';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import type { ConnectionFlags } from './connection-options';
import { formatBytes, formatTime } from './format-units';
import { joinRemote, namesRemoteFolder, remoteFolderOf, remoteType, usage } from './remote-path';
import { EXIT_OK, type FailureContext, reportFailure } from './cli-failure';
import { withClient } from './with-client';

export type FileOpKind = 'stat' | 'rm' | 'mv' | 'mkdir';

export interface FileOpFlags extends ConnectionFlags {
  readonly json?: boolean;
  readonly recursive?: boolean;
  readonly force?: boolean;
}

const isCode = (err: unknown, code: string): boolean => err instanceof RxferError && err.code === code;

/**
 * `rm -r`: the files under the folder (one LIST FOLDERS, the DELETEs pipelined), then its folders
 * deepest first (empty ones too: the listing shows them, issue 19), then the folder itself. On an
 * older server that lists only files, a folder it does not show (an empty one) makes the last
 * DELETE fail with NAME_CONFLICT, which says so.
 */
const removeTree = async (client: RxferClient, folder: string): Promise<number> => {
  const listed = await client.list(folder, { folders: true });
  const entries = listed.filter((entry) => !entry.folder);
  await Promise.all(entries.map((entry) => client.remove(entry.name)));
  const folders = new Set<string>(listed.filter((entry) => entry.folder && entry.name.startsWith(`${folder}/`)).map((entry) => entry.name));
  for (const entry of entries) {
    for (let dir = posix.dirname(entry.name); dir.length > folder.length; dir = posix.dirname(dir)) folders.add(dir);
  }
  const deepestFirst = [...folders].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const dir of deepestFirst) await client.remove(dir);
  await client.remove(folder).catch((err: unknown) => {
    if (!isCode(err, 'NAME_CONFLICT')) throw err;
    throw new RxferError('NAME_CONFLICT', `${printableName(folder)} still holds folders that were not listed (empty ones); delete them with rxfer rm, then the folder`);
  });
  return entries.length;
};

const remove = async (client: RxferClient, name: string, flags: FileOpFlags): Promise<string> => {
  const target = remoteFolderOf(name);
  if (target === '') throw usage('rm will not delete the top of your storage; name what to delete');
  try {
    if (flags.recursive && (await remoteType(client, target)) === 'folder') {
      const files = await removeTree(client, target);
      return `deleted ${printableName(target)}/ (${files} files)`;
    }
    await client.remove(target);
    return `deleted ${printableName(target)}`;
  } catch (err) {
    if (flags.force && isCode(err, 'NOT_FOUND')) return '';
    if (isCode(err, 'NOT_FOUND')) throw new RxferError('NOT_FOUND', `there is no file or folder named ${printableName(target)} on the server`);
    if (isCode(err, 'NAME_CONFLICT') && !flags.recursive) {
      throw usage(`${printableName(target)} is a folder with files in it: add -r to delete it and everything in it (rxfer rm -r ${printableName(target)})`);
    }
    throw err;
  }
};

/** `mv FROM TO`: TO names the new name, or the folder to move into (trailing "/" or an existing folder). */
const move = async (client: RxferClient, from: string, to: string, intoFolder: boolean): Promise<string> => {
  const source = remoteFolderOf(from);
  const destination = intoFolder ? joinRemote(remoteFolderOf(to), posix.basename(source)) : remoteFolderOf(to);
  try {
    await client.rename(source, destination);
  } catch (err) {
    // The server names the request's first name; the one taken is the destination.
    if (isCode(err, 'EXISTS')) {
      throw new RxferError('EXISTS', `${printableName(destination)} already exists on the server; mv never replaces a name: delete it first (rxfer rm) or choose another`);
    }
    if (isCode(err, 'NOT_FOUND') && (await remoteType(client, source)) === undefined) {
      throw new RxferError('NOT_FOUND', `there is no file or folder named ${printableName(source)} on the server`);
    }
    throw err;
  }
  return `renamed ${printableName(source)} → ${printableName(destination)}`;
};

const moveAll = async (client: RxferClient, names: readonly string[], context: FailureContext): Promise<NamesDone> => {
  const sources = names.slice(0, -1);
  const to = names[names.length - 1]!;
  const type = await remoteType(client, to);
  if (namesRemoteFolder(to) && type !== 'folder') {
    throw new RxferError('NOT_FOUND', `there is no folder ${printableName(to)} on the server (a name ending in "/" names a folder; make it first: rxfer mkdir ${printableName(to)})`);
  }
  if (sources.length > 1 && type !== 'folder') throw usage(`several names move into a folder: ${printableName(to)} is not one on the server`);
  return eachName(client, sources, (from) => move(client, from, to, type === 'folder'), context);
};

/** Lines printed for the names that worked, and the exit status: the worst of the failures, each reported already. */
interface NamesDone {
  readonly lines: string[];
  readonly exit: number;
}

/**
 * Each name on its own, as rm, mv and mkdir -p do: a name that fails is reported (`rxfer: ERR …`) and
 * the others go on; the exit status is then that failure's. A lost connection stops at once: every
 * name after it would fail alike.
 */
const eachName = async (client: RxferClient, names: readonly string[], op: (name: string) => Promise<string>, context: FailureContext): Promise<NamesDone> => {
  const lines: string[] = [];
  let exit = EXIT_OK;
  for (const name of names) {
    try {
      lines.push(await op(name));
    } catch (err) {
      if (client.isClosed) throw err;
      exit = Math.max(exit, reportFailure(err, context));
    }
  }
  return { lines, exit };
};

/** mkdir as `mkdir -p`: parents are made, and a folder that exists already is not an error. */
const makeFolder = async (client: RxferClient, name: string): Promise<string> => {
  const folder = remoteFolderOf(name);
  try {
    await client.mkdir(folder);
    return `created ${printableName(folder)}`;
  } catch (err) {
    if (!isCode(err, 'EXISTS')) throw err;
    const type = await remoteType(client, folder);
    if (type === 'folder') return `${printableName(folder)} exists already`;
    throw new RxferError('EXISTS', `${printableName(folder)} exists and is a file, not a folder`);
  }
};

/** Runs the operation; returns its JSON result, its human lines and its exit status. */
const operate = async (client: RxferClient, kind: FileOpKind, names: readonly string[], flags: FileOpFlags): Promise<[object, string[], number]> => {
  const context: FailureContext = { json: flags.json === true, tls: flags.tls === true || flags.ca !== undefined };
  const outcome = ({ lines, exit }: NamesDone): [object, string[], number] => [exit === EXIT_OK ? { ok: true } : { ok: false }, lines, exit];
  switch (kind) {
    case 'stat': {
      const name = remoteFolderOf(names[0]!);
      const status = await client.stat(name).catch((err: unknown) => {
        throw isCode(err, 'NOT_FOUND') ? new RxferError('NOT_FOUND', `there is no file or folder named ${printableName(name)} on the server`) : err;
      });
      const size = status.type === 'file' ? `${formatBytes(status.size)}  ` : '';
      const digest = status.digest === undefined ? '' : `${client.hash} ${status.digest}`;
      const json = { name, ...status, ...(status.digest !== undefined && { hash: client.hash }) };
      return [json, [`${printableName(name)}  ${status.type}  ${size}${digest}  ${formatTime(status.mtimeMs)}`], EXIT_OK];
    }
    case 'rm': {
      const done = await eachName(client, names, (name) => remove(client, name, flags), context);
      return outcome({ ...done, lines: done.lines.filter((line) => line !== '') });
    }
    case 'mv':
      return outcome(await moveAll(client, names, context));
    case 'mkdir':
      return outcome(await eachName(client, names, (name) => makeFolder(client, name), context));
  }
};

/** One connection, one operation; `--json` prints a machine-readable result on stdout. */
export const runFileOp = (kind: FileOpKind, names: readonly string[], flags: FileOpFlags): Promise<number> =>
  withClient(flags, async (client) => {
    const [result, lines, exit] = await operate(client, kind, names, flags);
    if (flags.json) return { output: JSON.stringify(result) + '\n', exit };
    return { output: flags.quiet ? '' : lines.map((line) => line.replace(/ +$/, '') + '\n').join(''), exit };
  });
