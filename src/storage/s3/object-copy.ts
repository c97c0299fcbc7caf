import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';

/** AWS refuses CopyObject for sources above 5 GiB; larger objects are copied in ranges. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
const COPY_PART_BYTES = 1024 ** 3;
const COPY_PARTS_AT_ONCE = 4;

export interface CopySource {
  readonly key: string;
  readonly size: number;
  /** The version checked (unquoted ETag): the copy fails with 412 if the source changed since. */
  readonly etag: string;
}

/**
 * Server-side copy of one object to another key, atomically visible there. `metadata` replaces the
 * source's (the commit adds the verified digest); without it the source's is kept (RENAME). On RGW a
 * CopyObject within one placement shares the data (refcounted), measured 73 ms for 1 GiB here; an
 * UploadPartCopy moves the bytes (≈ 66 MiB/s here), so ranges are used only where AWS needs them.
 */
export const copyObject = async (
  s3: S3Client,
  bucket: string,
  source: CopySource,
  to: string,
  metadata: Record<string, string> | undefined,
  maxSingleCopyBytes = MAX_SINGLE_COPY_BYTES,
): Promise<Date | undefined> => {
  const copySource = `${bucket}/${encodeURIComponent(source.key).replace(/%2F/g, '/')}`;
  if (source.size <= maxSingleCopyBytes) {
    const copied = await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: to,
        CopySource: copySource,
        CopySourceIfMatch: source.etag,
        ...(metadata ? { MetadataDirective: 'REPLACE', Metadata: metadata } : { MetadataDirective: 'COPY' }),
      }),
    );
    return copied.CopyObjectResult?.LastModified;
  }
  // RENAME of a large object keeps its metadata: read it from the source for the new upload.
  const meta = metadata ?? (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: source.key, IfMatch: source.etag }))).Metadata;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, Metadata: meta }));
  try {
    const ranges: { n: number; first: number; last: number }[] = [];
    for (let first = 0, n = 1; first < source.size; first += COPY_PART_BYTES, n++) ranges.push({ n, first, last: Math.min(source.size, first + COPY_PART_BYTES) - 1 });
    const parts: { PartNumber: number; ETag: string }[] = [];
    for (let i = 0; i < ranges.length; i += COPY_PARTS_AT_ONCE) {
      const batch = ranges.slice(i, i + COPY_PARTS_AT_ONCE).map(async ({ n, first, last }) => {
        const part = await s3.send(
          new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId, PartNumber: n, CopySource: copySource, CopySourceIfMatch: source.etag, CopySourceRange: `bytes=${first}-${last}` }),
        );
        parts.push({ PartNumber: n, ETag: part.CopyPartResult!.ETag! });
      });
      await Promise.all(batch);
    }
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
    return new Date();
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId })).catch(() => undefined);
    throw err;
  }
};
