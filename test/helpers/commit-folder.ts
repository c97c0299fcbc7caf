import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SmallCommitJob } from '../../src/storage/small-commits';
import { digestLogPath } from '../../src/storage/small-commit-log';

/**
 * A temp folder laid out as a server root is for the small-commit worker: the storage folder `big`
 * (under `root/`) and the folder of digest logs (`sums`), for tests that drive SmallCommits and its
 * worker directly against real files and a real thread.
 */
export interface CommitFolder {
  readonly dir: string;
  readonly sums: string;
  /** The real folder of the storage name `big`. */
  readonly folder: string;
  /** The digest log of `big`. */
  readonly log: string;
  /** A job committing `bytes` as `big/<name>`, with its real SHA-256 unless `extra` says otherwise. */
  job(name: string, bytes: Buffer, extra?: Partial<SmallCommitJob>): SmallCommitJob;
  remove(): Promise<void>;
}

export const makeCommitFolder = async (label: string): Promise<CommitFolder> => {
  const dir = await mkdtemp(join(tmpdir(), `rxfer-${label}-`));
  const sums = join(dir, 'sums');
  const folder = join(dir, 'root', 'big');
  await mkdir(sums, { recursive: true });
  await mkdir(folder, { recursive: true });
  let serial = 0;
  return {
    dir,
    sums,
    folder,
    log: digestLogPath(sums, 'big'),
    job: (name, bytes, extra = {}) => ({
      data: new Uint8Array(bytes),
      staging: join(folder, `.rxfer-part-${label}-${serial++}`),
      target: join(folder, name),
      folder,
      createOnly: false,
      measureReplaced: false,
      name: `big/${name}`,
      hash: 'sha256',
      digest: createHash('sha256').update(bytes).digest('hex'),
      ...extra,
    }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
};
