import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { RemoteName } from '../../protocol/remote-name';
import type { CommittedFile, StagedWrite, VerifiedContent } from '../storage-adapter';
import type { CheckpointHashing } from './checkpoint-hashing';
import type { ClaimedUpload, KeptUploads } from './kept-uploads';
import { MultipartSink } from './multipart-sink';
import { PartBudget } from './part-budget';
import { PublishOptions, Publisher } from './publisher';
import { s3Error } from './s3-errors';
import { endSink } from './small-staged-write';
import { unquote } from './upload-manifest';

/** What every multipart write of one adapter shares. */
export interface MultipartServices {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly budget: PartBudget;
  readonly partsInFlight: number;
  readonly publisher: Publisher;
  readonly kept: KeptUploads;
  readonly hashing: CheckpointHashing;
}

/**
 * An upload of one part or more: parts stream to a multipart upload at a staging key while the data
 * arrives (MultipartSink), and the commit completes it there, checks its size, and copies it under
 * its name with its digest (Publisher). Until then nothing is visible under the name. A lost
 * connection keeps the accepted parts and the manifest for a resume from any instance.
 */
export class MultipartStagedWrite implements StagedWrite {
  readonly sink: MultipartSink;
  readonly resumed: StagedWrite['resumed'];
  private settled = false;
  private completed = false;
  private readonly closeHash: () => void;

  constructor(
    private readonly name: RemoteName,
    private readonly claimed: ClaimedUpload,
    private readonly services: MultipartServices,
    private readonly options: PublishOptions,
  ) {
    const { s3, bucket, budget, partsInFlight, hashing } = services;
    const checkpoints = claimed.checkpoints && hashing.open(claimed.checkpoints.algorithm, claimed.checkpoints.state);
    this.closeHash = () => checkpoints?.close();
    const target = { s3, bucket, key: claimed.stagingKey, uploadId: claimed.uploadId };
    this.sink = new MultipartSink(
      target,
      claimed.partBytes,
      partsInFlight,
      budget,
      checkpoints,
      claimed.earlier,
      (checkpoint) => claimed.writer?.checkpoint(checkpoint),
      (err) => s3Error(err, 'store', name),
    );
    // Errors surface through commit(); an unhandled 'error' event would crash the process.
    this.sink.on('error', () => undefined);
    this.resumed = claimed.resumedHash ? { offset: claimed.earlier.bytes, hash: claimed.resumedHash } : undefined;
  }

  async commit(verified: VerifiedContent): Promise<CommittedFile> {
    this.settled = true;
    const { s3, bucket, publisher } = this.services;
    const { stagingKey, uploadId } = this.claimed;
    try {
      await endSink(this.sink);
      const parts = this.sink.parts;
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: stagingKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.n, ETag: part.etag })) },
        }),
      );
      this.completed = true;
      // RGW answers CompleteMultipartUpload with an empty ETag: a HEAD gives the real one, and the size
      // S3 assembled, which must be what was verified before the name changes.
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: stagingKey }));
      if (head.ContentLength !== verified.size) {
        throw new RxferError('STORAGE_FAILED', `${this.name}: the object store assembled ${head.ContentLength} bytes of the ${verified.size} verified; nothing stored`);
      }
      const file = await publisher.copyStaged(this.name, { key: stagingKey, size: verified.size, etag: unquote(head.ETag ?? '') }, verified, this.options);
      await this.discard();
      return file;
    } catch (err) {
      await this.discard();
      throw s3Error(err, 'store', this.name);
    }
  }

  /** The staging upload (or object, once completed) and the manifest go. */
  private async discard(): Promise<void> {
    const { s3, bucket, kept } = this.services;
    const { stagingKey, uploadId, writer } = this.claimed;
    this.sink.destroy();
    this.closeHash();
    // A writer that lost its manifest lost the upload with it: whoever took it over decides its fate.
    const gone = writer && !writer.owned
      ? Promise.resolve()
      : this.completed
      ? s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: stagingKey }))
      : s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: stagingKey, UploadId: uploadId }));
    await Promise.all([gone.catch(() => undefined), writer?.forget().catch(() => undefined)]);
    kept.release(this.claimed);
  }

  async abort(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.discard();
  }

  /**
   * The connection was lost mid-data: the accepted parts stay and the manifest says `kept`, for a
   * resume through any instance. Without a manifest (another connection owns this name's) it is dropped.
   */
  async suspend(): Promise<number> {
    const { writer } = this.claimed;
    if (this.settled || !writer || this.sink.errored) return this.abort().then(() => 0);
    this.settled = true;
    try {
      const checkpoint = await this.sink.keep();
      this.closeHash();
      if (checkpoint.bytes === 0 || !(await writer.keep(checkpoint))) {
        await this.discard();
        return 0;
      }
      this.services.kept.release(this.claimed);
      return checkpoint.bytes;
    } catch {
      await this.discard();
      return 0;
    }
  }
}
