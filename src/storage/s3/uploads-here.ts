import type { ManifestWriter } from './manifest-writer';

/**
 * The uploads this process is sending right now: their manifests (a RESUME of one is BUSY at once,
 * without waiting for its heartbeat to tell other instances) and their multipart upload ids (the
 * sweeper never aborts one of them, resumable or not).
 */
export class UploadsHere {
  private readonly writing = new Set<string>();
  private readonly live = new Set<string>();

  track(writer: ManifestWriter): ManifestWriter {
    this.writing.add(writer.key);
    return writer;
  }

  sending(uploadId: string): void {
    this.live.add(uploadId);
  }

  release(uploadId: string, writer: ManifestWriter | undefined): void {
    this.live.delete(uploadId);
    if (writer) this.writing.delete(writer.key);
  }

  isWriting(manifestKey: string): boolean {
    return this.writing.has(manifestKey);
  }

  isLive(uploadId: string): boolean {
    return this.live.has(uploadId);
  }
}
