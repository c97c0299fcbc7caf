import { readlinkSync } from 'node:fs';

/** The path behind a descriptor (/proc/self/fd, Linux), for the fs wrappers that note or fail calls by path. */
export const pathOfFd = (fd: number): string => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `<fd ${fd}>`;
  }
};
