import { readlinkSync } from 'node:fs';

/** The path behind a descriptor (/proc/self/fd, Linux), for the fs wrappers that note or fail calls by path. */
export const pathOfFd = (fd: number): string => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `<fd ${fd}>`;
  }
};

/**
 * A path through an open folder's /proc/self/fd/<n>/ (how the server now reaches a name in a folder it
 * checked: src/storage/opened-paths.ts) as that folder's own path; any other path as it is. Read
 * while the descriptor is open, i.e. inside the wrapped call.
 */
export const realPathOf = (path: unknown): string => {
  const at = /^\/proc\/self\/fd\/(\d+)\/(.+)$/.exec(String(path));
  return at ? `${pathOfFd(Number(at[1]))}/${at[2]}` : String(path);
};
