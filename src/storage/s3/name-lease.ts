import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import { isNotFound, isPreconditionFailed } from './s3-errors';
import { S3Keys } from './s3-keys';

/** A lease older than this was left by a crash: no commit, rename or delete holds one this long. */
export const LEASE_STALE_MS = 5 * 60_000;
/** How long a request waits for another instance's lease on its name before answering BUSY. */
const LEASE_WAIT_MS = 60_000;

/** This process, as lease owners are recorded (for an operator reading a stuck lease). */
export const INSTANCE_ID = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface LeaseOptions {
  /** Checked while waiting: a reason to give up at once (ADDFILE: the name now exists → EXISTS). */
  readonly giveUp?: () => Promise<RxferError | undefined>;
}

/**
 * Mutual exclusion per object key across every instance that shares the bucket, with nothing but
 * the bucket: a lease is a small object created with `If-None-Match: *`, which S3 (and RGW, tested
 * with 12 racers across two gateways) grants to exactly one writer. RGW ignores that condition on
 * CompleteMultipartUpload and CopyObject, so every change of a name (commit, rename, delete) runs
 * under its lease, and a create-only commit checks for the name only once it holds it.
 *
 * A holder that crashed leaves its lease behind: it is taken over once older than LEASE_STALE_MS.
 * Two instances may find the same stale lease, so the takeover is itself won with a conditional PUT
 * of a token named after the stale lease's ETag (unique: its body has a random owner); the token
 * stays until the sweeper removes it, so a slow loser cannot win it later and delete a fresh lease.
 */
export class NameLease {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly staleMs = LEASE_STALE_MS,
    private readonly waitMs = LEASE_WAIT_MS,
  ) {}

  /** Runs `work` while holding the leases of `objectKeys` (taken in sorted order: no deadlock). */
  async with<T>(objectKeys: readonly string[], work: () => Promise<T>, options: LeaseOptions = {}): Promise<T> {
    const held: string[] = [];
    try {
      for (const key of [...new Set(objectKeys)].sort()) held.push(await this.acquire(key, options));
      return await work();
    } finally {
      await Promise.all(held.map((lease) => this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: lease })).catch(() => undefined)));
    }
  }

  private async acquire(objectKey: string, { giveUp }: LeaseOptions): Promise<string> {
    const lease = this.keys.lease(objectKey);
    const deadline = Date.now() + this.waitMs;
    for (let attempt = 0; ; attempt++) {
      const body = JSON.stringify({ key: objectKey, owner: INSTANCE_ID, nonce: randomBytes(8).toString('hex'), at: new Date().toISOString() });
      try {
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: lease, Body: body, IfNoneMatch: '*', ContentType: 'application/json' }));
        return lease;
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
      }
      const reason = await giveUp?.();
      if (reason) throw reason;
      await this.takeOverIfStale(lease);
      if (Date.now() > deadline) {
        throw new RxferError('BUSY', `another server has been changing this name for over ${Math.round(this.waitMs / 1000)} s; try again later`);
      }
      // Jittered backoff: leases are held for a commit's few requests, so start short.
      await sleep(Math.min(250, 10 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
    }
  }

  private async takeOverIfStale(lease: string): Promise<void> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: lease })).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    if (!head?.LastModified || !head.ETag || Date.now() - head.LastModified.getTime() < this.staleMs) return;
    const token = `${lease}.takeover.${head.ETag.replace(/"/g, '')}`;
    try {
      await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: token, Body: INSTANCE_ID, IfNoneMatch: '*' }));
    } catch (err) {
      if (isPreconditionFailed(err)) return;
      throw err;
    }
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: lease }));
  }

  /** Removes takeover tokens old enough that nobody can still be about to race for them. */
  async sweepTokens(now = Date.now()): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.leases, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        if (!object.Key?.includes('.takeover.') || now - (object.LastModified?.getTime() ?? now) < 2 * this.staleMs) continue;
        await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key })).catch(() => undefined);
      }
      token = page.NextContinuationToken;
    } while (token);
  }
}
