import type { HashAlgorithm } from '../integrity/hash-algorithm';

/** Called as data moves: bytes done so far and the total, both counted in bytes. */
export type ProgressListener = (doneBytes: number, totalBytes: number) => void;

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Speak TLS (1.2+); the server's certificate must chain to a system CA or to `tls.ca`. */
  readonly tls?: { readonly ca?: string | Buffer };
  /** `<user>.<secret>` from `rxfer token`; sent with AUTH right after the greeting. */
  readonly token?: string;
  /**
   * The digest that verifies every transfer on this connection: SHA-256 (the default; what
   * sha256sum prints) or BLAKE3 (≈ 5× less CPU; the server must offer it, else HASH_UNSUPPORTED).
   */
  readonly hash?: HashAlgorithm;
  /** Covers the TCP connect and the greeting: a port that accepts but never greets fails too. */
  readonly connectTimeoutMs?: number;
  /**
   * Plain TCP only: after a second without a greeting, try one TLS handshake beside it, and if the
   * peer answers it, fail at once saying to use TLS (the CLI does; off by default, as the probe is a
   * connection of its own that a server counts).
   */
  readonly tlsProbe?: boolean;
}

/** `replace` sends UPLOAD (create or replace); `create` sends ADDFILE (fails with EXISTS). */
export type UploadMode = 'replace' | 'create';

export interface UploadOptions {
  readonly mode?: UploadMode;
  readonly onProgress?: ProgressListener;
  /**
   * Continue an interrupted upload of this name that the server kept, once the server's copy of the
   * prefix is proven to hash like the local file's (default true). `false` sends everything.
   */
  readonly resume?: boolean;
  /** Called when a resume was accepted, before the rest is sent: where it continues, of how much. */
  readonly onResume?: ProgressListener;
  /**
   * What `keptUpload()` found for this name, asked ahead of the upload (so that asking does not
   * hold up the requests in between): the upload does not ask again. `null`: nothing is kept.
   */
  readonly kept?: KeptUpload | null;
  /**
   * Send the data right after the header instead of first waiting for `OK file recv`, so that the
   * next request follows at once. A refused header then costs the file's bytes on the wire (the
   * server reads and drops them). For many files at once, such as `put -r`.
   */
  readonly pipelined?: boolean;
}

/** An interrupted upload the server kept: how many bytes, and their digest in the connection's algorithm. */
export interface KeptUpload {
  readonly bytes: number;
  readonly digest: string;
}

export interface DownloadOptions {
  readonly onProgress?: ProgressListener;
  /**
   * Keep the partial file of an interrupted download beside the target, and continue it next time
   * once the server has checked its prefix against the file it has (default true). `false` starts
   * over and removes such a partial file.
   */
  readonly resume?: boolean;
  /** Called when the server accepted a resume, before the rest arrives: where it continues, of how much. */
  readonly onResume?: ProgressListener;
  /**
   * The caller made the target's folder moments ago (get -r into a new folder), so nothing can be
   * under the target's name or its kept bytes' name: the looks for them (a directory there, bytes
   * to resume from) are skipped. Each missing name cost a system call and a thrown error, ≈ 10 µs a
   * file (bench/findings.md, issue 20). Anything made there meanwhile still fails the rename.
   */
  readonly intoNewFolder?: boolean;
  /**
   * The real path of the target's folder as the caller checked it (get -r: no link inside the
   * target). The file is renamed into that folder and no other: one swapped for a symbolic link
   * meanwhile fails the download (LOCAL_IO) instead of being written through (renameIntoFolder).
   */
  readonly checkedFolder?: string;
}

/** What the server confirmed (upload) or what was received and verified (download). */
export interface TransferResult {
  readonly size: number;
  readonly digest: string;
  /** Bytes that were already at the other end, verified, and not sent again (a resume). */
  readonly resumedAt?: number;
}
