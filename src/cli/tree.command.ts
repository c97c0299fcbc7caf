import { basename, posix, resolve } from 'node:path';
import type { RxferClient, TreeResult } from '../client/index';
import { RxferError } from '../errors/rxfer-error';
import { printableName } from '../protocol/remote-name';
import type { TransferFlags } from './transfer.command';
import { formatBytes, formatRate, formatSeconds } from './format-units';
import { localOddities } from './local-oddities';
import { joinRemote, namesRemoteFolder, remoteFolderOf, remoteType, usage } from './remote-path';
import { withClient } from './with-client';
import { statSync } from 'node:fs';

const notFound = (name: string): RxferError => new RxferError('NOT_FOUND', `there is no file or folder named ${printableName(name)} on the server`);

/** The remote folder must be one: a missing name or a file fails before any local folder is made. */
const assertRemoteFolder = async (client: RxferClient, name: string): Promise<void> => {
  const type = await remoteType(client, name);
  if (type === undefined) throw notFound(name);
  if (type === 'file') throw usage(`${printableName(name)} is a file, not a folder: get it without -r (rxfer get ${printableName(name)} DIR/)`);
};

interface TreePlan {
  readonly local: string;
  readonly remote: string;
}

/**
 * Whether `path` is a folder. `throwIfNoEntry: false` covers only ENOENT: a path through a file
 * ("afile/") throws ENOTDIR, which is no folder either (it was reported as INTERNAL).
 */
const folderAt = (path: string): boolean => {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
};

/** get -r: each REMOTE folder into LOCAL/<its name> (LOCAL: the last argument, or the current folder). */
const planGets = (args: readonly string[]): TreePlan[] => {
  const remotes = args.length > 2 ? args.slice(0, -1) : args.slice(0, 1);
  const into = args.length >= 2 ? args[args.length - 1]! : '.';
  if (into.endsWith('/') && !folderAt(into)) {
    throw new RxferError('LOCAL_IO', `there is no folder ${into} (a target ending in "/" names a folder; make it first: mkdir -p ${into})`, { path: into });
  }
  return remotes.map((arg) => {
    const remote = remoteFolderOf(arg);
    return { remote, local: posix.join(into, remote === '' ? '.' : posix.basename(remote)) };
  });
};

/**
 * put -r: DIR as REMOTE (default: DIR's own name), or into REMOTE/ when it ends in "/"; several DIRs
 * go into the folder named last, which must end in "/" or exist on the server.
 */
const planPuts = async (client: RxferClient, args: readonly string[]): Promise<TreePlan[]> => {
  const sources = args.length === 1 ? args : args.slice(0, -1);
  for (const source of sources) {
    const found = statSync(source, { throwIfNoEntry: false });
    if (found === undefined) throw new RxferError('LOCAL_IO', `there is no folder ${source} here`, { path: source });
    if (!found.isDirectory()) throw usage(`${printableName(source)} is a file, not a folder: put it without -r (rxfer put ${printableName(source)} …)`);
  }
  const last = args.length === 1 ? undefined : args[args.length - 1]!;
  const own = (dir: string) => basename(resolve(dir));
  if (last === undefined) return [{ local: sources[0]!, remote: own(sources[0]!) }];
  if (args.length === 2 && !namesRemoteFolder(last)) return [{ local: sources[0]!, remote: remoteFolderOf(last) }];
  if (!namesRemoteFolder(last) && (await remoteType(client, last)) !== 'folder') {
    throw usage(`several folders go into a folder: end ${printableName(last)} with "/" (it is then created)`);
  }
  return sources.map((local) => ({ local, remote: joinRemote(remoteFolderOf(last), own(local)) }));
};

/** Tells what put -r leaves out (links, sockets, FIFOs, unfinished downloads) and copies empty folders as MKDIR. */
const completeUpload = async (client: RxferClient, plan: TreePlan, quiet: boolean): Promise<{ folders: number; unfinished: number }> => {
  const odd = await localOddities(plan.local);
  for (const folder of odd.emptyFolders) {
    await client.mkdir(joinRemote(plan.remote, folder)).catch((err: unknown) => {
      if (!(err instanceof RxferError && err.code === 'EXISTS')) throw err;
    });
  }
  if (!quiet && odd.skipped.length > 0) {
    process.stderr.write(`rxfer: skipped ${odd.skipped.length} symbolic link(s) or special file(s), which are never followed or sent: ${someOf(odd.skipped, plan.local)}\n`);
  }
  if (!quiet && odd.unfinished.length > 0) tellUnfinished('put', odd.unfinished.length, odd.unfinished, plan.local);
  return { folders: odd.emptyFolders.length, unfinished: odd.unfinished.length };
};

/** The first three names (under `folder`), and how many more. */
const someOf = (names: readonly string[], folder: string, count = names.length): string => {
  const shown = names.slice(0, 3).map((name) => printableName(posix.join(folder, name)));
  return `${shown.join(', ')}${count > 3 ? ` and ${count - 3} more` : ''}`;
};

/** rxfer's own unfinished downloads, left out of a tree copy (isUnfinishedDownloadName): said, never silent. */
const tellUnfinished = (kind: 'put' | 'get', count: number, names: readonly string[], folder: string): void => {
  const what = kind === 'put' ? 'never sent' : 'never written by get -r (one would be taken for the kept bytes of its neighbour)';
  process.stderr.write(`rxfer: left out ${count} file(s) named as rxfer's own unfinished downloads (.NAME.rxfer-resume, its .lock, .NAME.rxfer-part-…), ${what}: ${someOf(names, folder, count)}\n`);
};

/**
 * `rxfer get -r REMOTE [DIR]`: the folder REMOTE into DIR/<its name> (every name the server lists is
 * checked before anything is written). `rxfer put -r DIR [REMOTE]`: the folder DIR as REMOTE (default:
 * DIR's own name). Both on one connection, small files pipelined.
 */
export const runTree = (kind: 'put' | 'get', args: readonly string[], flags: TransferFlags): Promise<number> => {
  const { downloadTree, uploadTree } = require('../client/index') as typeof import('../client/index');
  const { DigestCache } = require('../client/digest-cache') as typeof import('../client/digest-cache');
  const startedAt = Date.now();
  let gets: TreePlan[] = [];
  let current: TreePlan | undefined;
  return withClient(
    flags,
    async (client, interruption) => {
      const plans = kind === 'get' ? gets : await planPuts(client, args);
      const options = { resume: flags.resume !== false, skipIdentical: flags.skipExisting !== false, signal: interruption };
      let output = '';
      for (const plan of plans) {
        current = plan;
        let result: TreeResult;
        let folders = 0;
        let unfinished = 0;
        if (kind === 'get') {
          await assertRemoteFolder(client, plan.remote);
          result = await downloadTree(client, plan.remote, plan.local, options);
          unfinished = result.unfinished?.count ?? 0;
          if (!flags.quiet && result.unfinished) tellUnfinished('get', unfinished, result.unfinished.names, '');
        } else {
          const digestCache = DigestCache.open(plan.local, client.hash, { trustOld: flags.checksum !== true });
          result = await uploadTree(client, plan.local, plan.remote, { ...options, digestCache });
          ({ folders, unfinished } = await completeUpload(client, plan, flags.quiet === true));
        }
        const ms = Date.now() - startedAt;
        const [from, to] = kind === 'get' ? [plan.remote || '/', plan.local] : [plan.local, plan.remote || '/'];
        if (flags.json) {
          output += JSON.stringify({ kind: `${kind} -r`, from, to, files: result.files, bytes: result.bytes, skipped: result.skipped, ...(folders > 0 && { emptyFolders: folders }), ...(unfinished > 0 && { unfinishedLeftOut: unfinished }) }) + '\n';
          continue;
        }
        if (flags.quiet) continue;
        const skipped = result.skipped > 0 ? `  (${result.skipped} already there, skipped)` : '';
        const empty = folders > 0 ? `  ${folders} empty folder(s)` : '';
        output += `${kind} -r ${printableName(from)} → ${printableName(to)}  ${result.files} files  ${formatBytes(result.bytes)}  ${formatSeconds(ms)} (${formatRate(result.bytes, ms)})${skipped}${empty}\n`;
      }
      return output;
    },
    () => {
      if (kind === 'get') gets = planGets(args);
    },
    () => {
      if (current === undefined) return `before any file was ${kind === 'get' ? 'written' : 'sent'}`;
      const [from, to] = kind === 'get' ? [current.remote || '/', current.local] : [current.local, current.remote || '/'];
      // Each file is committed whole or not at all, on either side: what is there stays, and a re-run skips it.
      const skips = flags.skipExisting !== false ? ' (the files already there are skipped)' : '';
      return `${kind} -r ${printableName(from)} → ${printableName(to)} abandoned; each file copied so far is whole, the others are as they were; run the same command again to finish${skips}`;
    },
  );
};
