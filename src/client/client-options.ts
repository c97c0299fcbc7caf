/** Called as data moves: bytes done so far and the total, both counted in bytes. */
export type ProgressListener = (doneBytes: number, totalBytes: number) => void;

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Speak TLS (1.2+); the server's certificate must chain to a system CA or to `tls.ca`. */
  readonly tls?: { readonly ca?: string | Buffer };
  /** `<user>.<secret>` from `rxfer token`; sent with AUTH right after the greeting. */
  readonly token?: string;
  /** Covers the TCP connect and the greeting: a port that accepts but never greets fails too. */
  readonly connectTimeoutMs?: number;
}

/** `replace` sends UPLOAD (create or replace); `create` sends ADDFILE (fails with EXISTS). */
export type UploadMode = 'replace' | 'create';

export interface UploadOptions {
  readonly mode?: UploadMode;
  readonly onProgress?: ProgressListener;
}

export interface DownloadOptions {
  readonly onProgress?: ProgressListener;
}

/** What the server confirmed (upload) or what was received and verified (download). */
export interface TransferResult {
  readonly size: number;
  readonly sha256: string;
}
