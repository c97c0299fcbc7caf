import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { RxferConfig } from '../config/config.schema';

/** Resolves if storage answers, rejects with a one-line reason if not. */
export type StorageProbe = () => Promise<void>;

/** A folder that is there, is a folder, and can be written: what local storage needs to serve. */
const probeFolder =
  (root: string): StorageProbe =>
  async () => {
    const info = await stat(root).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`storage folder ${root}: ${err.code === 'ENOENT' ? 'missing' : (err.code ?? err.message)}`);
    });
    if (!info.isDirectory()) throw new Error(`storage folder ${root}: not a folder`);
    await access(root, constants.R_OK | constants.W_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`storage folder ${root}: ${err.code ?? err.message}`);
    });
  };

/** One HeadBucket: answers in a few ms from a healthy endpoint, and proves the credentials. */
const probeBucket = (config: RxferConfig['storage']['s3']): StorageProbe => {
  const { createS3Client } = require('../storage/s3/s3-client') as typeof import('../storage/s3/s3-client');
  const { HeadBucketCommand } = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
  // One try: the health check should report a failing endpoint now, not after the SDK's retries.
  const s3 = createS3Client({ ...config, maxAttempts: 1 });
  return async () => {
    await s3.send(new HeadBucketCommand({ Bucket: config.bucket })).catch((err: Error) => {
      throw new Error(`S3 bucket ${config.bucket}: ${err.name}`);
    });
  };
};

/**
 * One probe in flight at a time, its answer shared by every request that arrives meanwhile: against
 * hung storage, a probe per /healthz request would pile up and take libuv's few file-system threads
 * from the transfers themselves.
 */
const singleFlight = (probe: StorageProbe): StorageProbe => {
  let running: Promise<void> | undefined;
  return () =>
    (running ??= probe().finally(() => {
      running = undefined;
    }));
};

/** The cheap check /healthz runs, chosen by `storage.kind` as the adapter is. */
export const storageProbeFor = ({ storage }: RxferConfig): StorageProbe => {
  switch (storage.kind) {
    case 'memory':
      return () => Promise.resolve();
    case 's3':
      return singleFlight(probeBucket(storage.s3));
    default:
      return singleFlight(probeFolder(storage.root));
  }
};
