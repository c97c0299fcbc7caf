import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { KeptUploads } from './kept-uploads';
import { NameLease } from './name-lease';
import { ObjectListing } from './object-listing';
import { S3Keys } from './s3-keys';
import { ManifestStore, UploadManifest, isActive } from './upload-manifest';

/**
 * What interrupted or crashed work leaves in the bucket, and its removal once older than
 * `storage.partialExpiryMs` (every instance sweeps; each step is idempotent):
 * - kept uploads (manifest + multipart upload) untouched that long: the manifest is first marked
 *   `expiring` by compare-and-swap, so a resume that claims it at that moment wins or loses cleanly;
 * - multipart uploads under the staging area that no manifest names (non-resumable uploads of a
 *   server that died) and completed staging objects (a crash between complete and copy);
 * - takeover tokens of stale leases (see NameLease).
 */
export class UploadSweeper {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly store: ManifestStore,
    private readonly kept: KeptUploads,
    private readonly listing: ObjectListing,
    private readonly lease: NameLease,
  ) {}

  /** The kept uploads' manifests, with their keys. */
  async *manifests(): AsyncGenerator<{ key: string; manifest: UploadManifest; etag: string }> {
    for await (const { object } of this.listing.objects(this.keys.manifests)) {
      if (!object?.Key?.endsWith('.json')) continue;
      const read = await this.store.read(object.Key);
      if (read) yield { key: object.Key, ...read };
    }
  }

  /** Bytes kept for names under a folder ('' for all): kept uploads count against quotas. */
  async bytesUnder(folder: string): Promise<number> {
    let total = 0;
    for await (const { manifest } of this.manifests()) if (folder === '' || manifest.name.startsWith(folder + '/')) total += manifest.bytes;
    return total;
  }

  async expire(maxAgeMs: number, now = Date.now()): Promise<number> {
    let freed = 0;
    const named = new Set<string>();
    for await (const { key, manifest, etag } of this.manifests()) {
      const idle = now - Date.parse(manifest.updatedAt) >= maxAgeMs;
      if (!idle || this.kept.here.isWriting(key) || isActive(manifest, now)) {
        named.add(manifest.uploadId);
        continue;
      }
      const expiring = await this.store.swap(key, { ...manifest, state: 'expiring' }, etag);
      if (expiring === undefined) continue;
      await this.kept.abort(manifest);
      await this.store.remove(key);
      freed += manifest.bytes;
    }
    let marker: { key?: string; id?: string } = {};
    do {
      const page = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.keys.stagingArea, KeyMarker: marker.key, UploadIdMarker: marker.id }));
      for (const upload of page.Uploads ?? []) {
        if (named.has(upload.UploadId!) || this.kept.here.isLive(upload.UploadId!) || now - (upload.Initiated?.getTime() ?? now) < maxAgeMs) continue;
        await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key!, UploadId: upload.UploadId! })).catch(() => undefined);
      }
      marker = page.IsTruncated ? { key: page.NextKeyMarker, id: page.NextUploadIdMarker } : {};
    } while (marker.key);
    for await (const { object } of this.listing.objects(this.keys.stagingArea)) {
      if (!object || now - (object.LastModified?.getTime() ?? now) < maxAgeMs) continue;
      await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key! })).catch(() => undefined);
      freed += object.Size ?? 0;
    }
    await this.lease.sweepTokens(now);
    return freed;
  }
}
