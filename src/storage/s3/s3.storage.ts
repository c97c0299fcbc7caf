import { S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { S3Config } from '../../config/config.schema';
import { DEFAULT_HASH } from '../../integrity/hash-algorithm';
import type { RemoteName } from '../../protocol/remote-name';
import type { FileStatus, HashChoice, Jail, ListOptions, ListedFile, PartialUpload, ReadHandle, ReadOptions, StagedWrite, StorageAdapter, WriteOptions } from '../storage-adapter';
import { CheckpointHashing } from './checkpoint-hashing';
import { DigestCache } from './digest-cache';
import { KeptUploads } from './kept-uploads';
import { MultipartStagedWrite, MultipartServices } from './multipart-staged-write';
import { NameLease } from './name-lease';
import { ObjectListing } from './object-listing';
import { ObjectOps } from './object-ops';
import { ObjectReads } from './object-reads';
import { PartBudget } from './part-budget';
import { Publisher } from './publisher';
import { createS3Client } from './s3-client';
import { ensureBucket } from './bucket-check';
import { s3Error } from './s3-errors';
import { SettlingWrites } from './settling-writes';
import { S3Keys } from './s3-keys';
import { SmallStagedWrite } from './small-staged-write';
import { ManifestStore } from './upload-manifest';
import { UploadSweeper } from './upload-sweeper';

/** S3 allows at most this many parts: larger files get larger parts. */
const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;
/** How long close() waits for uploads still settling with S3. */
const CLOSE_WAIT_MS = 10_000;

/**
 * Files in an S3 bucket (Ceph RGW or AWS), shared by any number of rxfer servers: every piece of
 * state a request depends on (files, digests, kept uploads, leases) lives in the bucket, none only in
 * a process. See docs/S3.md for the layout, what holds across instances and what a crash leaves.
 * Users' jails are enforced by the names alone: S3 has no links to escape through.
 */
export class S3Storage implements StorageAdapter {
  readonly kind = 's3';
  readonly resumableFromBytes: number;
  private readonly s3: S3Client;
  private readonly keys: S3Keys;
  private readonly bucket: string;
  private readonly digests = new DigestCache();
  private readonly budget: PartBudget;
  private readonly reads: ObjectReads;
  private readonly listing: ObjectListing;
  private readonly ops: ObjectOps;
  private readonly publisher: Publisher;
  private readonly kept: KeptUploads;
  private readonly sweeper: UploadSweeper;
  private readonly services: MultipartServices;
  private readonly hashing = new CheckpointHashing();
  private readonly settling = new SettlingWrites();

  constructor(private readonly config: S3Config) {
    this.s3 = createS3Client(config);
    this.bucket = config.bucket;
    this.keys = new S3Keys(config.prefix);
    // Below one part an upload is a single PutObject at commit: nothing is kept to resume.
    this.resumableFromBytes = config.partBytes;
    this.budget = new PartBudget(config.maxBufferedBytes, config.partBytes);
    const lease = new NameLease(this.s3, this.bucket, this.keys);
    const store = new ManifestStore(this.s3, this.bucket);
    this.reads = new ObjectReads(this.s3, this.bucket, this.keys, this.digests);
    this.listing = new ObjectListing(this.s3, this.bucket, this.keys, this.reads, this.digests);
    this.ops = new ObjectOps(this.s3, this.bucket, this.keys, lease, this.reads, this.listing, this.digests);
    this.publisher = new Publisher(this.s3, this.bucket, this.keys, lease, this.digests);
    this.kept = new KeptUploads(this.s3, this.bucket, this.keys, store);
    this.sweeper = new UploadSweeper(this.s3, this.bucket, this.keys, store, this.kept, this.listing, lease);
    this.services = { s3: this.s3, bucket: this.bucket, budget: this.budget, partsInFlight: config.partsInFlight, publisher: this.publisher, kept: this.kept, hashing: this.hashing };
  }

  /** Bytes of part buffers held right now, all uploads together (a gauge for tests and metrics). */
  get bufferedBytes(): number {
    return this.budget.inUse;
  }

  init(): Promise<void> {
    return ensureBucket(this.s3, this.config);
  }

  async close(): Promise<void> {
    await this.settling.drain(CLOSE_WAIT_MS);
    await this.hashing.close();
    this.s3.destroy();
  }

  /** Runs `work`, its failures (a name S3 cannot hold included) as storage codes. */
  private async call<T>(action: string, name: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw s3Error(err, action, name);
    }
  }

  openRead(name: RemoteName, { from, hash = DEFAULT_HASH }: ReadOptions = {}): Promise<ReadHandle> {
    return this.reads.openRead(name, hash, from);
  }

  sizeOf(name: RemoteName): Promise<number | undefined> {
    return this.call('read', name, () => this.publisher.sizeOf(this.keys.object(name)));
  }

  /** LIST PAGED / AFTER with StartAfter, FOLDERS from markers and prefixes, SHALLOW by delimiter (object-listing.ts). */
  readonly listsInPages = true;
  readonly listsFolders = true;

  list(prefix: string, { limit, hash = DEFAULT_HASH, signal, page, folders, shallow }: ListOptions): Promise<ListedFile[]> {
    return this.call('list', prefix || 'the root', () => this.listing.list(prefix, limit, hash, signal, { ...(page && { page }), ...(folders && { folders }), ...(shallow && { shallow }) }));
  }

  stat(name: RemoteName, { hash = DEFAULT_HASH }: Jail & HashChoice = {}): Promise<FileStatus> {
    return this.call('stat', name, () => this.listing.stat(name, hash));
  }

  /** Deletes the file (or empty folder) and any kept upload of that name; NOT_FOUND only if neither. */
  async remove(name: RemoteName): Promise<number> {
    const key = this.keys.object(name);
    const removed = await this.call('delete', name, () => this.ops.remove(name)).catch((err: RxferError) => err);
    const kept = await this.kept.discard(key).catch(() => 0);
    if (typeof removed === 'number') return removed + kept;
    if (removed.code === 'NOT_FOUND' && kept > 0) return kept;
    throw removed;
  }

  rename(from: RemoteName, to: RemoteName): Promise<void> {
    return this.call('rename', from, () => this.ops.rename(from, to));
  }

  makeFolder(name: RemoteName): Promise<void> {
    return this.call('create', name, () => this.ops.makeFolder(name));
  }

  async usage(prefix: string): Promise<number> {
    const [stored, kept] = await Promise.all([this.listing.usage(prefix), this.sweeper.bytesUnder(prefix)]);
    return stored + kept;
  }

  partialUpload(name: RemoteName, { hash = DEFAULT_HASH }: HashChoice = {}): Promise<PartialUpload | undefined> {
    return this.call('resume', name, () => this.kept.probe(name, this.keys.object(name), hash));
  }

  expirePartialUploads(maxAgeMs: number): Promise<number> {
    return this.sweeper.expire(maxAgeMs);
  }

  /** Parts of `partBytes`, or larger where the file would need more than S3's 10,000 parts. */
  private partBytesFor(size: number): number {
    return Math.max(this.config.partBytes, Math.ceil(size / MAX_PARTS / MiB) * MiB);
  }

  async beginWrite(name: RemoteName, { size, createOnly, measureReplaced = false, resume, hash = DEFAULT_HASH, onKeptDropped }: WriteOptions): Promise<StagedWrite> {
    const options = { createOnly, measureReplaced };
    return this.call('store', name, async () => {
      const key = this.keys.object(name);
      if (createOnly || size >= this.resumableFromBytes) await this.publisher.assertWritable(name, createOnly);
      if (size < this.resumableFromBytes && !resume) {
        return this.settling.track(new SmallStagedWrite(name, size, this.budget, this.publisher, options));
      }
      const claimed = await this.kept.claim(name, key, size, hash, this.partBytesFor(size), resume, onKeptDropped);
      return this.settling.track(new MultipartStagedWrite(name, claimed, this.services, options));
    });
  }
}
