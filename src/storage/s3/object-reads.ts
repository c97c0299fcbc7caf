import { Readable } from 'node:stream';
import { GetObjectCommand, GetObjectCommandOutput, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import { HashAlgorithm, startHash } from '../../integrity/hash-algorithm';
import type { ResumePoint } from '../../protocol/command';
import type { RemoteName } from '../../protocol/remote-name';
import type { ReadHandle } from '../storage-adapter';
import { DigestCache, digestsInMetadata } from './digest-cache';
import { isNotFound, isPreconditionFailed, s3Error } from './s3-errors';
import { S3Keys } from './s3-keys';
import { unquote } from './upload-manifest';

/** One version of an object, as a HEAD or GET describes it. */
export interface ObjectVersion {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly mtimeMs: number;
  readonly digests: Partial<Record<HashAlgorithm, string>>;
}

const versionOf = (key: string, head: { ContentLength?: number; ETag?: string; LastModified?: Date; Metadata?: Record<string, string> }): ObjectVersion => ({
  key,
  size: head.ContentLength ?? 0,
  etag: unquote(head.ETag ?? ''),
  mtimeMs: head.LastModified?.getTime() ?? 0,
  digests: digestsInMetadata(head.Metadata),
});

/**
 * DOWNLOAD from S3: the size and digest come from the object's metadata (written at commit), so the
 * reply line costs one request and no reading; the body streams from GetObject with its own
 * backpressure (an unread socket stops the HTTP response). Every later request of a download names
 * the version it began with (If-Match on the ETag), so a commit landing in between cannot splice two
 * versions. Objects written by other tools have no digest: they are hashed once and remembered.
 */
export class ObjectReads {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly digests: DigestCache,
  ) {}

  async head(key: string): Promise<ObjectVersion | undefined> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    return head && versionOf(key, head);
  }

  /** The digest of a version: from its metadata, this process's cache, or (last) by reading it. */
  async digestOf(version: ObjectVersion, algorithm: HashAlgorithm, read = true): Promise<string | undefined> {
    const known = version.digests[algorithm] ?? this.digests.get(version.key, version.etag, version.size, algorithm);
    if (known || !read) return known;
    const hash = startHash(algorithm);
    for await (const chunk of await this.body(version, 0)) hash.update(chunk as Buffer);
    const digest = hash.hex();
    this.digests.remember(version.key, version.etag, version.size, { [algorithm]: digest });
    return digest;
  }

  private async body(version: ObjectVersion, from: number, to = version.size): Promise<Readable> {
    if (from >= to) return Readable.from([]);
    const range = from === 0 && to === version.size ? undefined : `bytes=${from}-${to - 1}`;
    const got: GetObjectCommandOutput = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: version.key, IfMatch: version.etag, Range: range }));
    return got.Body as Readable;
  }

  /** Whether the version's first `from.offset` bytes hash to `from.digest` (reads that prefix). */
  private async hasPrefix(version: ObjectVersion, from: ResumePoint, algorithm: HashAlgorithm): Promise<boolean> {
    if (from.offset > version.size) return false;
    const hash = startHash(algorithm);
    for await (const chunk of await this.body(version, 0, from.offset)) hash.update(chunk as Buffer);
    return hash.hex() === from.digest;
  }

  async openRead(name: RemoteName, algorithm: HashAlgorithm, from?: ResumePoint, attempt = 0): Promise<ReadHandle> {
    const key = this.keys.object(name);
    try {
      // A plain download of a file with its digest in its metadata is one request: the GET's headers.
      if (!from) {
        const got = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        const version = versionOf(key, got);
        const digest = await this.digestOf(version, algorithm, false);
        if (digest) return { file: { name, size: version.size, digest, mtimeMs: version.mtimeMs }, stream: got.Body as Readable, offset: 0 };
        (got.Body as Readable).destroy();
      }
      const version = await this.head(key);
      if (!version) throw new RxferError('NOT_FOUND', `${name} does not exist`);
      const digest = (await this.digestOf(version, algorithm))!;
      const offset = from && (await this.hasPrefix(version, from, algorithm)) ? from.offset : 0;
      const stream = await this.body(version, offset);
      return { file: { name, size: version.size, digest, mtimeMs: version.mtimeMs }, stream, offset };
    } catch (err) {
      // Replaced between two requests of this download (If-Match failed): start again on the new version.
      if (isPreconditionFailed(err) && attempt < 3) return this.openRead(name, algorithm, from, attempt + 1);
      throw s3Error(err, 'read', name);
    }
  }
}
