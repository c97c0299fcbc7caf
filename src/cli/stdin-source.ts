import { createWriteStream, fstatSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { localIo } from '../client/local-io';

/** Standard input as a file to upload, and how to clean up after it. */
export interface StdinFile {
  readonly path: string;
  dispose(): Promise<void>;
}

/**
 * `rxfer put - NAME`: an upload announces its size before its first byte (and may be resumed), so a
 * pipe is first spooled to a private temporary file; stdin redirected from a file is read in place.
 */
export const stdinAsFile = async (signal?: AbortSignal): Promise<StdinFile> => {
  if (fstatSync(0).isFile()) return { path: '/dev/stdin', dispose: async () => undefined };
  const folder = await localIo('create a temporary folder in', tmpdir(), () => mkdtemp(join(tmpdir(), 'rxfer-stdin-')));
  const path = join(folder, 'stdin');
  const dispose = () => rm(folder, { recursive: true, force: true });
  try {
    // The signal stops the spooling (SIGINT while a producer keeps writing): without it the
    // interrupt would go unnoticed until stdin ends, and a second ^C would leave the spool behind.
    await localIo('write standard input to', path, () => pipeline(process.stdin, createWriteStream(path, { mode: 0o600, highWaterMark: 1024 * 1024 }), { signal }));
    return { path, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
};
