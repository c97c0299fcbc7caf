import { ListObjectsV2Command, S3Client, _Object } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { HashAlgorithm } from '../../integrity/hash-algorithm';
import { parseRemoteName } from '../../protocol/remote-name';
import type { FileStatus, ListedFile } from '../storage-adapter';
import { DigestCache } from './digest-cache';
import { ObjectReads } from './object-reads';
import { S3Keys } from './s3-keys';
import { unquote } from './upload-manifest';

/** HEADs in flight for one LIST's digests (ListObjectsV2 gives ETags, not metadata). */
const HEADS_AT_ONCE = 16;

/**
 * LIST, STAT and usage over ListObjectsV2, 1,000 keys a page. A LIST is recursive like the local
 * adapter's walk: one flat listing under the folder (the root is listed by its common prefixes, so
 * the servers' own `.rxfer/` keys are skipped, not paged through). Digests come from the objects'
 * metadata, one HEAD per file the first time, then from this process's DigestCache by ETag.
 */
export class ObjectListing {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly reads: ObjectReads,
    private readonly digests: DigestCache,
  ) {}

  /** Every object under `prefix` (a key prefix), page by page; `delimiter` for one level only. */
  async *objects(prefix: string, delimiter?: string, signal?: AbortSignal): AsyncGenerator<{ object?: _Object; folder?: string }> {
    let token: string | undefined;
    do {
      if (signal?.aborted) throw new RxferError('SHUTTING_DOWN', 'the listing was abandoned: its connection is gone');
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }), { abortSignal: signal });
      for (const common of page.CommonPrefixes ?? []) yield { folder: common.Prefix! };
      for (const object of page.Contents ?? []) yield { object };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The user files under a folder ('' for all), skipping the servers' own keys and folder markers. */
  async *files(folder: string, signal?: AbortSignal): AsyncGenerator<_Object> {
    if (folder !== '') {
      for await (const { object } of this.objects(this.keys.under(folder), undefined, signal)) if (object) yield object;
      return;
    }
    for await (const { object, folder: sub } of this.objects(this.keys.prefix, '/', signal)) {
      if (object) yield object;
      else if (sub && sub !== this.keys.reserved) for await (const { object: inner } of this.objects(sub, undefined, signal)) if (inner) yield inner;
    }
  }

  /** `signal`: the request is gone, so the listing (and its HEADs) stop. */
  async list(folder: string, limit: number, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<ListedFile[]> {
    const found: { file: ListedFile; key: string; etag: string }[] = [];
    for await (const object of this.files(folder, signal)) {
      const name = this.keys.nameOf(object.Key!);
      if (name === undefined || !isValidName(name)) continue;
      if (found.length >= limit) throw new RxferError('TOO_LARGE', `more than ${limit} files under ${folder || 'the root'}; list a narrower folder`);
      const etag = unquote(object.ETag ?? '');
      const size = object.Size ?? 0;
      const digest = this.digests.get(object.Key!, etag, size, algorithm);
      found.push({ key: object.Key!, etag, file: { name, size, mtimeMs: object.LastModified?.getTime() ?? 0, ...(digest && { digest }) } });
    }
    const unknown = found.filter((entry) => entry.file.digest === undefined);
    for (let i = 0; i < unknown.length; i += HEADS_AT_ONCE) {
      if (signal?.aborted) throw new RxferError('SHUTTING_DOWN', 'the listing was abandoned: its connection is gone');
      await Promise.all(unknown.slice(i, i + HEADS_AT_ONCE).map((entry) => this.fillDigest(entry, algorithm)));
    }
    return found.map((entry) => entry.file);
  }

  /** The digest from the object's metadata; `-` in the listing if it has none (never read for LIST). */
  private async fillDigest(entry: { file: ListedFile; key: string; etag: string }, algorithm: HashAlgorithm): Promise<void> {
    const version = await this.reads.head(entry.key).catch(() => undefined);
    if (!version || version.etag !== entry.etag) return;
    this.digests.remember(version.key, version.etag, version.size, version.digests);
    const digest = await this.reads.digestOf(version, algorithm, false);
    if (digest) entry.file = { ...entry.file, digest };
  }

  /** A file (HEAD), else a folder (a marker or anything under it), else NOT_FOUND. */
  async stat(name: string, algorithm: HashAlgorithm): Promise<FileStatus> {
    const version = await this.reads.head(this.keys.object(name));
    if (version) {
      const digest = await this.reads.digestOf(version, algorithm, false);
      return { type: 'file', size: version.size, mtimeMs: version.mtimeMs, ...(digest && { digest }) };
    }
    const under = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.under(name), MaxKeys: 1 }));
    const first = under.Contents?.[0];
    if (!first) throw new RxferError('NOT_FOUND', `${name} does not exist`);
    const isMarker = first.Key === this.keys.folder(name);
    return { type: 'folder', size: 0, mtimeMs: isMarker ? (first.LastModified?.getTime() ?? 0) : 0 };
  }

  /** Bytes of the user files under a folder ('' for all). */
  async usage(folder: string): Promise<number> {
    let total = 0;
    for await (const object of this.files(folder)) total += object.Size ?? 0;
    return total;
  }
}

/** Keys written by other tools may not be names a client could send: those are not listed. */
const isValidName = (name: string): boolean => {
  try {
    parseRemoteName(name);
    return true;
  } catch {
    return false;
  }
};
