import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { CommittedFile, VerifiedContent } from '../storage-adapter';
import type { RemoteName } from '../../protocol/remote-name';
import { DigestCache } from './digest-cache';
import { NameLease } from './name-lease';
import { copyObject, CopySource } from './object-copy';
import { isNotFound, isPreconditionFailed } from './s3-errors';
import { S3Keys, digestMetaKey } from './s3-keys';
import { unquote } from './upload-manifest';

export interface PublishOptions {
  readonly createOnly: boolean;
  readonly measureReplaced: boolean;
}

/**
 * The last step of every upload: the verified bytes appear under their name in one S3 operation
 * (a PutObject, or a CopyObject from the staging object), with their digest in the object's
 * metadata, under the name's lease (see NameLease), so that a create-only commit's check and write
 * cannot be split by another instance's commit or rename.
 */
export class Publisher {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly lease: NameLease,
    private readonly digests: DigestCache,
  ) {}

  /** Size of the object under `key`, or undefined. */
  async sizeOf(key: string): Promise<number | undefined> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    return head?.ContentLength;
  }

  /**
   * Before any data moves: EXISTS if `name` is a file (create-only), NAME_CONFLICT if it is a folder
   * or one of its folders is a file. S3 itself would store both (it has no folders); a folder tree
   * has to stay what a client can download into a disk. Not atomic: two servers creating `a` and
   * `a/b` at the same moment can still make both (LIST then shows both, STAT the file).
   */
  async assertWritable(name: RemoteName, createOnly: boolean): Promise<void> {
    const key = this.keys.object(name);
    const segments = name.split('/');
    const parents = segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
    const [size, folder, ...parentSizes] = await Promise.all([
      createOnly ? this.sizeOf(key) : undefined,
      this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key + '/', MaxKeys: 1 })),
      ...parents.map((parent) => this.sizeOf(this.keys.object(parent))),
    ]);
    if ((folder.KeyCount ?? 0) > 0) throw new RxferError('NAME_CONFLICT', `${name} is a folder`);
    const file = parents.find((_, i) => parentSizes[i] !== undefined);
    if (file !== undefined) throw new RxferError('NAME_CONFLICT', `${file} is a file, so ${name} cannot be in it`);
    if (size !== undefined) throw new RxferError('EXISTS', `${name} already exists`);
  }

  private exists(name: string, key: string) {
    return async () => ((await this.sizeOf(key)) !== undefined ? new RxferError('EXISTS', `${name} already exists`) : undefined);
  }

  /** A small upload, held in memory until now: one PutObject (create-only: `If-None-Match: *` too). */
  putObject(name: RemoteName, body: Buffer, verified: VerifiedContent, { createOnly, measureReplaced }: PublishOptions): Promise<CommittedFile> {
    const key = this.keys.object(name);
    const work = async (): Promise<CommittedFile> => {
      const replacedBytes = !createOnly && measureReplaced ? ((await this.sizeOf(key)) ?? 0) : 0;
      try {
        const put = await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            Metadata: { [digestMetaKey(verified.hash)]: verified.digest },
            ...(createOnly && { IfNoneMatch: '*' }),
          }),
        );
        this.digests.remember(key, unquote(put.ETag ?? ''), verified.size, { [verified.hash]: verified.digest });
      } catch (err) {
        if (createOnly && isPreconditionFailed(err)) throw new RxferError('EXISTS', `${name} already exists`);
        throw err;
      }
      return { name, size: verified.size, digest: verified.digest, mtimeMs: Date.now(), replacedBytes };
    };
    return this.lease.with([key], work, createOnly ? { giveUp: this.exists(name, key) } : {});
  }

  /** A multipart upload, completed at its staging key: copied to its name with its digest. */
  copyStaged(name: RemoteName, staged: CopySource, verified: VerifiedContent, { createOnly, measureReplaced }: PublishOptions): Promise<CommittedFile> {
    const key = this.keys.object(name);
    const work = async (): Promise<CommittedFile> => {
      const current = createOnly || measureReplaced ? await this.sizeOf(key) : undefined;
      // RGW ignores If-None-Match on CopyObject: under the lease, this look is what makes it create-only.
      if (createOnly && current !== undefined) throw new RxferError('EXISTS', `${name} already exists`);
      this.digests.forget(key);
      const modified = await copyObject(this.s3, this.bucket, staged, key, { [digestMetaKey(verified.hash)]: verified.digest });
      return { name, size: verified.size, digest: verified.digest, mtimeMs: modified?.getTime() ?? Date.now(), replacedBytes: current ?? 0 };
    };
    return this.lease.with([key], work, createOnly ? { giveUp: this.exists(name, key) } : {});
  }
}
