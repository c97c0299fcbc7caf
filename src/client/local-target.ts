import { isAbsolute, relative, resolve, sep } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { parseRemoteName, printableName } from '../protocol/remote-name';

/**
 * Where a file the server listed goes on this machine, or NAME_INVALID. The client distrusts the
 * server (scp's CVE-2019-6111, croc, rsync's 2024 CVEs): a name must pass the same rules the server
 * applies, lie under the folder that was asked for, and resolve inside the local target folder.
 */
export const localPathFor = (localDir: string, remoteFolder: string, serverName: string): string => {
  let name: string;
  try {
    name = parseRemoteName(serverName);
  } catch (err) {
    throw new RxferError('NAME_INVALID', `the server listed a name this client refuses: ${(err as Error).message}`);
  }
  const folder = remoteFolder.replace(/\/+$/, '');
  if (folder !== '' && !name.startsWith(folder + '/')) {
    throw new RxferError('NAME_INVALID', `the server listed ${printableName(name)}, which is not under ${printableName(folder)}`);
  }
  const rel = folder === '' ? name : name.slice(folder.length + 1);
  const root = resolve(localDir);
  const target = resolve(root, ...rel.split('/'));
  const back = relative(root, target);
  if (back === '' || back === '..' || back.startsWith('..' + sep) || isAbsolute(back)) {
    throw new RxferError('NAME_INVALID', `the server listed ${printableName(name)}, which would land outside ${localDir}`);
  }
  return target;
};
