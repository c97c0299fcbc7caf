import { RxferError } from '../errors/rxfer-error';
import type { RxferClient } from '../client/index';
import type { RemoteStatus } from '../client/file-op.request';

/**
 * Remote names as users type them: a trailing "/" says "a folder" (as with cp and rsync), and
 * "/", "." and "./" name the top of the user's storage. Leading slashes are dropped: every name is
 * relative to the user's folder on the server anyway.
 */
export const namesRemoteFolder = (arg: string): boolean => arg.endsWith('/') || arg === '.' || arg === '';

/** The folder an argument names, without slashes at either end ('' is the top). */
export const remoteFolderOf = (arg: string): string => {
  const trimmed = arg.replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '.' ? '' : trimmed.replace(/^\.\//, '');
};

export const joinRemote = (folder: string, name: string): string => (folder === '' ? name : `${folder}/${name}`);

/** STAT of the remote name, or undefined if there is nothing by that name. */
export const remoteStatusOf = async (client: RxferClient, name: string): Promise<RemoteStatus | undefined> => {
  try {
    return await client.stat(name);
  } catch (err) {
    if (err instanceof RxferError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
};

/** The remote name's type, or undefined if there is nothing by that name. */
export const remoteType = async (client: RxferClient, name: string): Promise<'file' | 'folder' | undefined> => {
  if (remoteFolderOf(name) === '') return 'folder';
  return (await remoteStatusOf(client, remoteFolderOf(name)))?.type;
};

export const usage = (message: string): RxferError => new RxferError('USAGE', message);
