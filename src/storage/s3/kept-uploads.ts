import { randomUUID } from 'node:crypto';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { HashAlgorithm } from '../../integrity/hash-algorithm';
import type { ResumePoint } from '../../protocol/command';
import type { PartialUpload } from '../storage-adapter';
import { ManifestWriter } from './manifest-writer';
import { UploadsHere } from './uploads-here';
import type { Checkpoint } from './part-ledger';
import { INSTANCE_ID } from './name-lease';
import { overtaken, partsStillThere } from './kept-upload-checks';
import { S3Keys } from './s3-keys';
import { SavedHash } from './saved-hash';
import { ManifestStore, ReadManifest, UploadManifest, isActive } from './upload-manifest';

/** A multipart upload this connection writes: where, what is there already, and its manifest (if resumable). */
export interface ClaimedUpload {
  readonly uploadId: string;
  readonly stagingKey: string;
  readonly partBytes: number;
  readonly earlier: Checkpoint;
  /** Where the checkpoints' hash starts (absent when not resumable: nothing to save states for). */
  readonly checkpoints?: { readonly algorithm: HashAlgorithm; readonly state?: Uint8Array };
  /** For a resume: the pipeline's hash, continued from the kept prefix. */
  readonly resumedHash?: SavedHash;
  readonly writer?: ManifestWriter;
}

/**
 * Interrupted uploads kept in the bucket for RESUME, one per name, usable from any instance: the
 * multipart upload itself (its parts stay in RGW, invisible) and a manifest beside it with the parts'
 * sizes and ETags and the hash state after them. Parts of an unfinished multipart upload cannot be
 * read back through S3, so a resume cannot re-hash them as the local adapter re-hashes its file;
 * instead the parts S3 lists now (ListParts: their sizes and ETags, which RGW computed from the bytes
 * it stored) must be exactly those the state was saved for, and the client's digest must equal it.
 */
export class KeptUploads {
  /** What this process is sending right now. */
  readonly here = new UploadsHere();

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly store: ManifestStore,
  ) {}

  private busy(name: string): RxferError {
    return new RxferError('BUSY', `${name} is being uploaded on another connection right now; resume once that upload ends`);
  }

  /** Being written, here or by an instance that refreshed it lately. */
  private inUse(manifestKey: string, read: ReadManifest | undefined): boolean {
    return this.here.isWriting(manifestKey) || (read !== undefined && isActive(read.manifest));
  }

  /** The kept bytes of `name` and their digest, if a resume in `algorithm` can use them. */
  async probe(name: string, key: string, algorithm: HashAlgorithm): Promise<PartialUpload | undefined> {
    const manifestKey = this.keys.manifest(key);
    const read = await this.store.read(manifestKey);
    if (this.inUse(manifestKey, read)) throw this.busy(name);
    // A sweeper is deleting it: nothing to resume.
    if (read?.manifest.state === 'expiring') return undefined;
    if (read && (await overtaken(this.s3, this.bucket, key, read))) {
      await this.discardRead(manifestKey, read);
      return undefined;
    }
    if (!read || read.manifest.algorithm !== algorithm || read.manifest.bytes === 0 || !read.manifest.hashState) return undefined;
    if (!(await partsStillThere(this.s3, this.bucket, read.manifest))) return undefined;
    const hash = await SavedHash.start(algorithm, Buffer.from(read.manifest.hashState, 'base64'));
    return { bytes: read.manifest.bytes, digest: hash.hex() };
  }

  /**
   * A multipart upload for `name`: a fresh one (resumable if no other connection is writing this
   * name; an interrupted upload kept for it is replaced, as PROTOCOL.md says), or with `resume` the
   * kept one, once its prefix is proven (RESUME_MISMATCH otherwise, and the kept upload goes).
   * `dropped` is told the bytes of a kept upload this write deletes (replaced, or not matching), for quotas.
   */
  async claim(name: string, key: string, size: number, algorithm: HashAlgorithm, partBytes: number, resume?: ResumePoint, dropped: (bytes: number) => void = () => undefined): Promise<ClaimedUpload> {
    const manifestKey = this.keys.manifest(key);
    const read = await this.store.read(manifestKey);
    if (resume) return this.resume(name, key, manifestKey, read, resume, algorithm, dropped);
    const stagingKey = this.keys.staging(randomUUID());
    const created = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: stagingKey }));
    const claimed = { uploadId: created.UploadId!, stagingKey, partBytes, earlier: { parts: [], bytes: 0 } };
    this.here.sending(claimed.uploadId);
    // Another connection (here or on another instance) is writing this name, or a sweeper is
    // deleting what was kept: this one stages apart (it commits all the same, but cannot be resumed).
    if (this.inUse(manifestKey, read) || read?.manifest.state === 'expiring') return claimed;
    const manifest: UploadManifest = { v: 1, name, size, algorithm, ...claimed, parts: [], bytes: 0, state: 'writing', owner: INSTANCE_ID, updatedAt: new Date().toISOString() };
    const etag = await this.store.swap(manifestKey, manifest, read?.etag);
    if (etag === undefined) return claimed;
    if (read) {
      await this.abort(read.manifest);
      dropped(read.manifest.bytes);
    }
    return { ...claimed, checkpoints: { algorithm }, writer: this.here.track(new ManifestWriter(this.store, manifestKey, manifest, etag)) };
  }

  private async resume(name: string, key: string, manifestKey: string, read: ReadManifest | undefined, { offset, digest }: ResumePoint, algorithm: HashAlgorithm, dropped: (bytes: number) => void): Promise<ClaimedUpload> {
    const mismatch = (why: string) => new RxferError('RESUME_MISMATCH', `cannot resume ${name} at ${offset} bytes: ${why}; upload it from the start`, { offset });
    if (this.inUse(manifestKey, read)) throw this.busy(name);
    if (!read || read.manifest.state === 'expiring') throw mismatch('no interrupted upload of it is kept');
    if (await overtaken(this.s3, this.bucket, key, read)) {
      dropped(await this.discardRead(manifestKey, read));
      throw mismatch('it was uploaded again since');
    }
    const { manifest } = read;
    if (manifest.algorithm !== algorithm) throw mismatch(`it was kept with ${manifest.algorithm.toUpperCase()}`);
    // A kept upload is continued after its last accepted part, exactly: the client asks RESUME first.
    if (manifest.bytes !== offset || !manifest.hashState) throw mismatch(`${manifest.bytes} bytes are kept`);
    const state = Buffer.from(manifest.hashState, 'base64');
    const proof = await SavedHash.start(algorithm, state);
    if (proof.hex() !== digest || !(await partsStillThere(this.s3, this.bucket, manifest))) {
      // Kept bytes the uploader cannot use are not worth keeping: its next upload starts from 0.
      dropped(await this.discardRead(manifestKey, read));
      throw mismatch('the kept bytes do not match the digest given for them');
    }
    const mine: UploadManifest = { ...manifest, state: 'writing', owner: INSTANCE_ID, updatedAt: new Date().toISOString() };
    const etag = await this.store.swap(manifestKey, mine, read.etag);
    if (etag === undefined) throw this.busy(name);
    const earlier = { parts: manifest.parts, bytes: manifest.bytes, state };
    const resumedHash = await SavedHash.start(algorithm, state);
    const writer = this.here.track(new ManifestWriter(this.store, manifestKey, mine, etag));
    this.here.sending(manifest.uploadId);
    return { uploadId: manifest.uploadId, stagingKey: manifest.stagingKey, partBytes: manifest.partBytes, earlier, checkpoints: { algorithm, state }, resumedHash, writer };
  }

  /** This process is done sending the upload (committed, kept or dropped). */
  release(claimed: ClaimedUpload): void {
    this.here.release(claimed.uploadId, claimed.writer);
  }

  /** Deletes the kept upload of `key` (not one being written); returns its bytes. */
  async discard(key: string): Promise<number> {
    const manifestKey = this.keys.manifest(key);
    const read = await this.store.read(manifestKey);
    if (!read || this.inUse(manifestKey, read)) return 0;
    return this.discardRead(manifestKey, read);
  }

  private async discardRead(manifestKey: string, read: ReadManifest): Promise<number> {
    await this.abort(read.manifest);
    await this.store.remove(manifestKey);
    return read.manifest.bytes;
  }

  async abort(manifest: Pick<UploadManifest, 'stagingKey' | 'uploadId'>): Promise<void> {
    await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: manifest.stagingKey, UploadId: manifest.uploadId })).catch(() => undefined);
  }
}
