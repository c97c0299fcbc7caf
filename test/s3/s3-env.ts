import { randomBytes } from 'node:crypto';
import { DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, AbortMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../../src/config/config.schema';
import { createS3Client } from '../../src/storage/s3/s3-client';

/**
 * The S3 tests run against a real object store (Ceph RGW from scripts/ceph/ceph-s3-up.sh), never a
 * mock: they need S3_ENDPOINT (S3_ENDPOINTS for two gateways) and the AWS_* credentials it prints.
 * Without them they are skipped, saying why, so `npm test` passes on a machine without Ceph.
 */
export const S3_ENDPOINT = process.env.S3_ENDPOINT;
export const S3_ENDPOINTS = (process.env.S3_ENDPOINTS ?? S3_ENDPOINT ?? '').split(',').filter(Boolean);
export const TEST_BUCKET = process.env.S3_TEST_BUCKET ?? 'rxfer-test';

const SKIP_REASON = 'skipped: S3_ENDPOINT is not set (start Ceph with `eval "$(scripts/ceph/ceph-s3-up.sh)"`)';

let warned = false;
/** `describe`, or `describe.skip` with the reason in its title and printed once, when no S3 endpoint is set. */
export const describeS3 = (name: string, body: () => void): void => {
  if (S3_ENDPOINT) return describe(name, body);
  if (!warned) {
    warned = true;
    console.log(`S3 tests ${SKIP_REASON}`);
  }
  describe.skip(`${name} (${SKIP_REASON})`, body);
};

/** A fresh key prefix per test file, so runs never see each other's objects. */
export const freshPrefix = (label: string): string => `t-${label}-${randomBytes(4).toString('hex')}/`;

/** `storage.s3` for the test bucket, gateway `gateway` (0 or 1), under `prefix`. */
export const s3Config = (prefix: string, gateway = 0, extra: Partial<S3Config> = {}): S3Config => ({
  endpoint: S3_ENDPOINTS[gateway % S3_ENDPOINTS.length] ?? S3_ENDPOINT,
  region: process.env.AWS_REGION ?? 'us-east-1',
  bucket: TEST_BUCKET,
  prefix,
  forcePathStyle: true,
  createBucket: true,
  partBytes: 5 * 1024 * 1024,
  partsInFlight: 4,
  maxBufferedBytes: 256 * 1024 * 1024,
  maxAttempts: 3,
  ...extra,
});

export const testClient = (): S3Client => createS3Client(s3Config(''));

/** Deletes every object and multipart upload under `prefix` (the memstore OSD keeps data in RAM). */
export const wipePrefix = async (s3: S3Client, prefix: string): Promise<void> => {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET, Prefix: prefix, ContinuationToken: token }));
    const objects = (page.Contents ?? []).map((object) => ({ Key: object.Key! }));
    if (objects.length) await s3.send(new DeleteObjectsCommand({ Bucket: TEST_BUCKET, Delete: { Objects: objects, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: TEST_BUCKET, Prefix: prefix }));
  for (const upload of uploads.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket: TEST_BUCKET, Key: upload.Key!, UploadId: upload.UploadId! }));
};

/** All keys under `prefix`, sorted. */
export const keysUnder = async (s3: S3Client, prefix: string): Promise<string[]> => {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) keys.push(object.Key!.slice(prefix.length));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
};
