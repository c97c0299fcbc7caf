import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import type { ListingEntry } from '../protocol/listing';
import type { TransferResult } from './client-options';
import { localPathFor } from './local-target';
import type { RxferClient } from './rxfer-client';
import { identicalFiles } from './identical';

export interface TreeResult {
  /** Files copied, and their bytes (skipped files not included). */
  readonly files: number;
  readonly bytes: number;
  /** Files left alone because the other side already had them, same size and digest. */
  readonly skipped: number;
}

export interface TreeOptions {
  /** Skip files whose size and digest already match at the other end (default true). */
  readonly skipIdentical?: boolean;
  /** Continue interrupted transfers of large files (default true; see UploadOptions.resume). */
  readonly resume?: boolean;
}

/**
 * `get -r`: lists the remote folder, checks **every** name before anything is written (one hostile
 * name and nothing is downloaded), then downloads all files pipelined on the one connection, each
 * verified and renamed into place as a single download is.
 */
export const downloadTree = async (
  client: RxferClient,
  remoteFolder: string,
  localDir: string,
  options: TreeOptions & { onFile?: (entry: ListingEntry, result: TransferResult) => void } = {},
): Promise<TreeResult> => {
  const entries = await client.list(remoteFolder);
  const planned = entries.map((entry) => ({ entry, target: localPathFor(localDir, remoteFolder, entry.name) }));
  const seen = new Set<string>();
  for (const { target, entry } of planned) {
    if (seen.has(target)) throw new RxferError('PROTOCOL_VIOLATION', `the server listed ${entry.name} twice`);
    seen.add(target);
  }
  await mkdir(localDir, { recursive: true });
  for (const folder of new Set(planned.map(({ target }) => dirname(target)))) await mkdir(folder, { recursive: true });
  // The listing gives size and digest for free: a file already here costs no request at all.
  const identical = options.skipIdentical === false ? [] : await identicalFiles(planned.map(({ entry, target }) => ({ localPath: target, remote: entry })), client.hash);
  const wanted = planned.filter((_, index) => !identical[index]);
  const results = await Promise.all(
    wanted.map(async ({ entry, target }) => {
      const result = await client.download(entry.name, target, { resume: options.resume });
      options.onFile?.(entry, result);
      return result;
    }),
  );
  return { files: results.length, bytes: results.reduce((sum, result) => sum + result.size, 0), skipped: planned.length - wanted.length };
};
