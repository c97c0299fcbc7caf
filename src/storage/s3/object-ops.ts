import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { RemoteName } from '../../protocol/remote-name';
import { DigestCache } from './digest-cache';
import { NameLease } from './name-lease';
import { copyObject } from './object-copy';
import { ObjectListing } from './object-listing';
import { ObjectReads } from './object-reads';
import { isPreconditionFailed } from './s3-errors';
import { S3Keys } from './s3-keys';

/** Objects a folder RENAME moves at once, and at most in all (beyond: rename narrower folders). */
const MOVES_AT_ONCE = 8;
const MAX_FOLDER_RENAME = 10_000;

/**
 * DELETE, RENAME and MKDIR. A file's rename is a copy then a delete (S3 has no rename), under the
 * leases of both names, so no commit or rename of either can land between the look and the copy
 * ("never over an existing name") or between the copy and the delete. A crash between the copy and
 * the delete leaves the file under both names, never under neither. A folder rename moves its files
 * one by one and is not atomic: a crash leaves some under each name (each file whole, in one place or both).
 */
export class ObjectOps {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly lease: NameLease,
    private readonly reads: ObjectReads,
    private readonly listing: ObjectListing,
    private readonly digests: DigestCache,
  ) {}

  private delete(key: string): Promise<unknown> {
    this.digests.forget(key);
    return this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Whether anything (a marker or a file) is under the folder `name`. */
  private async folderHasAnything(name: string, besides?: string): Promise<boolean> {
    const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.under(name), MaxKeys: 2 }));
    return (page.Contents ?? []).some((object) => object.Key !== besides);
  }

  /** A file, or an empty folder (NAME_CONFLICT if not empty); the bytes freed. */
  async remove(name: RemoteName): Promise<number> {
    const key = this.keys.object(name);
    return this.lease.with([key], async () => {
      const version = await this.reads.head(key);
      if (version) {
        await this.delete(key);
        return version.size;
      }
      const marker = this.keys.folder(name);
      if (await this.folderHasAnything(name, marker)) throw new RxferError('NAME_CONFLICT', `${name} is a folder that is not empty`);
      if (!(await this.reads.head(marker))) throw new RxferError('NOT_FOUND', `${name} does not exist`);
      await this.delete(marker);
      return 0;
    });
  }

  async rename(from: RemoteName, to: RemoteName): Promise<void> {
    const source = this.keys.object(from);
    const target = this.keys.object(to);
    await this.lease.with([source, target], async () => {
      if ((await this.reads.head(target)) || (await this.folderHasAnything(to))) throw new RxferError('EXISTS', `${to} already exists`);
      const version = await this.reads.head(source);
      if (version) {
        await copyObject(this.s3, this.bucket, version, target, undefined);
        await this.delete(source);
        return;
      }
      if (!(await this.folderHasAnything(from))) throw new RxferError('NOT_FOUND', `${from} does not exist`);
      if ((to + '/').startsWith(from + '/')) throw new RxferError('NAME_CONFLICT', `cannot move the folder ${from} into itself`);
      await this.moveFolder(from, to);
    });
  }

  private async moveFolder(from: string, to: string): Promise<void> {
    const moves: { key: string; size: number; etag: string }[] = [];
    for await (const { object } of this.listing.objects(this.keys.under(from))) {
      if (!object) continue;
      if (moves.length >= MAX_FOLDER_RENAME) throw new RxferError('TOO_LARGE', `${from} holds more than ${MAX_FOLDER_RENAME} objects; rename its subfolders one by one`);
      moves.push({ key: object.Key!, size: object.Size ?? 0, etag: (object.ETag ?? '').replace(/"/g, '') });
    }
    const fromPrefix = this.keys.under(from);
    const toPrefix = this.keys.under(to);
    for (let i = 0; i < moves.length; i += MOVES_AT_ONCE) {
      await Promise.all(
        moves.slice(i, i + MOVES_AT_ONCE).map(async (move) => {
          await copyObject(this.s3, this.bucket, move, toPrefix + move.key.slice(fromPrefix.length), undefined);
          await this.delete(move.key);
        }),
      );
    }
  }

  /** A folder marker, created only if nothing has the name (`If-None-Match: *` on the marker). */
  async makeFolder(name: RemoteName): Promise<void> {
    const key = this.keys.object(name);
    await this.lease.with([key], async () => {
      if ((await this.reads.head(key)) || (await this.folderHasAnything(name))) throw new RxferError('EXISTS', `${name} already exists`);
      try {
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.keys.folder(name), Body: Buffer.alloc(0), IfNoneMatch: '*' }));
      } catch (err) {
        if (isPreconditionFailed(err)) throw new RxferError('EXISTS', `${name} already exists`);
        throw err;
      }
    });
  }
}
