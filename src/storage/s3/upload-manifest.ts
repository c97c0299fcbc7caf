import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { HashAlgorithm } from '../../integrity/hash-algorithm';
import type { UploadedPart } from './part-ledger';
import { isNotFound, isPreconditionFailed } from './s3-errors';

/**
 * What the bucket keeps about a multipart upload in progress or interrupted, beside it: enough for
 * any instance to continue it (PROTOCOL.md's RESUME) and for any instance to expire it.
 */
export interface UploadManifest {
  readonly v: 1;
  readonly name: string;
  readonly size: number;
  readonly algorithm: HashAlgorithm;
  readonly uploadId: string;
  readonly stagingKey: string;
  readonly partBytes: number;
  /** The parts S3 accepted, in order, and the hash state (base64) right after their bytes. */
  readonly parts: readonly UploadedPart[];
  readonly bytes: number;
  readonly hashState?: string;
  /** `writing`: a connection is sending it (its owner refreshes `updatedAt`); `kept`: waiting for a resume. */
  readonly state: 'writing' | 'kept' | 'expiring';
  readonly owner: string;
  readonly updatedAt: string;
}

/** A manifest as read, with the ETag that a compare-and-swap replaces it against. */
export interface ReadManifest {
  readonly manifest: UploadManifest;
  readonly etag: string;
  /** When the bucket last stored it (the gateway's clock, like the files' LastModified). */
  readonly storedAt: number;
}

/** A writer that has not refreshed its manifest for this long is gone (killed server, lost network). */
export const WRITER_GONE_MS = 60_000;

export const isActive = (manifest: UploadManifest, now = Date.now()): boolean =>
  manifest.state === 'writing' && now - Date.parse(manifest.updatedAt) < WRITER_GONE_MS;

/**
 * Reads and writes manifests with compare-and-swap (`If-Match` on the ETag read, `If-None-Match: *`
 * for a new one; RGW wants the ETag without its quotes), so that two instances never both believe
 * they own one upload: the loser's write fails and it carries on without a resumable manifest.
 */
export class ManifestStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async read(key: string): Promise<ReadManifest | undefined> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const text = await object.Body!.transformToString();
      const manifest = JSON.parse(text) as UploadManifest;
      if (manifest.v !== 1) return undefined;
      return { manifest, etag: unquote(object.ETag ?? ''), storedAt: object.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (isNotFound(err) || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  /** Writes `manifest` if the key still holds `expected` (undefined: if there is none); the new ETag, or undefined if another writer won. */
  async swap(key: string, manifest: UploadManifest, expected: string | undefined): Promise<string | undefined> {
    try {
      const result = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: JSON.stringify(manifest),
          ContentType: 'application/json',
          ...(expected === undefined ? { IfNoneMatch: '*' } : { IfMatch: expected }),
        }),
      );
      return unquote(result.ETag ?? '');
    } catch (err) {
      if (isPreconditionFailed(err)) return undefined;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
  }
}

export const unquote = (etag: string): string => etag.replace(/"/g, '');
