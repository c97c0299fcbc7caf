import { HeadObjectCommand, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { isNotFound } from './s3-errors';
import type { ReadManifest, UploadManifest } from './upload-manifest';

/** Whether S3 still holds exactly the parts the manifest recorded (same numbers, sizes, ETags). */
export const partsStillThere = async (s3: S3Client, bucket: string, manifest: UploadManifest): Promise<boolean> => {
  const listed = new Map<number, { size: number; etag: string }>();
  let marker: string | undefined;
  try {
    do {
      const page = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: manifest.stagingKey, UploadId: manifest.uploadId, PartNumberMarker: marker }));
      for (const part of page.Parts ?? []) listed.set(part.PartNumber!, { size: part.Size ?? -1, etag: part.ETag ?? '' });
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  return manifest.parts.every((part) => listed.get(part.n)?.size === part.size && listed.get(part.n)?.etag === part.etag);
};

/**
 * Whether a file was committed under the name since the upload was kept (both times are the
 * gateway's): that upload started over (PROTOCOL.md), so what was kept is stale. Within the same
 * second it counts as stale too: the resume then starts from 0, which is safe.
 */
export const overtaken = async (s3: S3Client, bucket: string, key: string, read: ReadManifest): Promise<boolean> => {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
  return head?.LastModified !== undefined && head.LastModified.getTime() + 1000 > read.storedAt;
};
