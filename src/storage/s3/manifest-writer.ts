import type { Checkpoint } from './part-ledger';
import { INSTANCE_ID } from './name-lease';
import { ManifestStore, UploadManifest } from './upload-manifest';

/** A writer refreshes its manifest at least this often, so other instances can tell it is alive. */
const HEARTBEAT_MS = 20_000;

/**
 * The one connection that owns an upload's manifest keeps it up to date: after each accepted part
 * (the checkpoint a resume would start from) and on a heartbeat. Writes go one at a time, each a
 * compare-and-swap on the last ETag; if one fails, another instance took the upload over (it found
 * this writer silent for WRITER_GONE_MS) and this one stops writing: its upload can still commit,
 * it just can no longer be resumed.
 */
export class ManifestWriter {
  private latest: UploadManifest;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private lost = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly store: ManifestStore,
    readonly key: string,
    manifest: UploadManifest,
    private etag: string,
  ) {
    this.latest = manifest;
    this.heartbeat = setInterval(() => this.schedule(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get owned(): boolean {
    return !this.lost;
  }

  /** Records that the first `checkpoint.parts` are accepted (superseding any earlier checkpoint). */
  checkpoint({ parts, bytes, state }: Checkpoint): void {
    this.latest = { ...this.latest, parts, bytes, ...(state && { hashState: Buffer.from(state).toString('base64') }) };
    this.schedule();
  }

  private schedule(): void {
    if (this.lost) return;
    if (this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      if (this.lost) return;
      const manifest: UploadManifest = { ...this.latest, owner: INSTANCE_ID, updatedAt: new Date().toISOString() };
      const etag = await this.store.swap(this.key, manifest, this.etag).catch(() => this.etag);
      if (etag === undefined) this.lost = true;
      else this.etag = etag;
    });
  }

  /** The connection is gone: the manifest says `kept` with the last checkpoint. False if it is not ours. */
  async keep(checkpoint: Checkpoint): Promise<boolean> {
    this.checkpoint(checkpoint);
    this.latest = { ...this.latest, state: 'kept' };
    this.schedule();
    await this.stop();
    return !this.lost;
  }

  /** The upload committed or was dropped: the manifest goes (if it is still ours). */
  async forget(): Promise<void> {
    await this.stop();
    if (!this.lost) await this.store.remove(this.key);
  }

  private async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.writing;
    // A write scheduled while the last one ran.
    if (this.dirty) await this.writing;
  }
}
