import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../../config/config.schema';
import { RxferError } from '../../errors/rxfer-error';
import { statusOf } from './s3-errors';

/**
 * The bucket must exist, or be created when `createBucket` says so: a typo or a missing bucket fails
 * start-up with an error that names it (and the endpoint), not the first upload.
 */
export const ensureBucket = async (s3: S3Client, config: S3Config): Promise<void> => {
  const where = `${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
  try {
    await s3.send(new HeadBucketCommand({ Bucket: config.bucket }));
    return;
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'CredentialsProviderError') {
      throw new RxferError('STORAGE_FAILED', `no S3 credentials for the bucket ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the server's environment`);
    }
    if (statusOf(err) !== 404 && name !== 'NotFound' && name !== 'NoSuchBucket') {
      throw new RxferError('STORAGE_FAILED', `cannot reach the S3 bucket ${where}: ${name} (HTTP ${statusOf(err) ?? '-'})`);
    }
  }
  if (!config.createBucket) throw new RxferError('STORAGE_FAILED', `the S3 bucket ${where} does not exist (create it, or set storage.s3.createBucket)`);
  await s3.send(new CreateBucketCommand({ Bucket: config.bucket })).catch((err: unknown) => {
    if ((err as Error).name === 'BucketAlreadyOwnedByYou') return;
    throw new RxferError('STORAGE_FAILED', `cannot create the S3 bucket ${where}: ${(err as Error).name}`);
  });
};
