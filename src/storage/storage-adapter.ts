import { Readable, Writable } from 'node:stream';
import type { HashAlgorithm, RunningHash } from '../integrity/hash-algorithm';
import type { ResumePoint } from '../protocol/command';
import { RemoteName } from '../protocol/remote-name';

/** A committed file as storage knows it, with its digest in the algorithm the request asked for. */
export interface StoredFile {
  readonly name: RemoteName;
  readonly size: number;
  readonly digest: string;
  readonly mtimeMs: number;
}

/**
 * A file as LIST shows it; `digest` only where it is known without reading a large file. With
 * `folder`, a folder (ListOptions.folders only): size 0, no digest.
 */
export interface ListedFile {
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly digest?: string;
  readonly folder?: true;
}

export interface FileStatus {
  readonly type: 'file' | 'folder';
  readonly size: number;
  readonly mtimeMs: number;
  readonly digest?: string;
}

/** A commit's result: the new file, and the size of the one it replaced (0 if none), for quotas. */
export interface CommittedFile extends StoredFile {
  readonly replacedBytes: number;
}

/**
 * An open file to send: the stream yields exactly `file.size - offset` bytes of the version described
 * (all of it unless a resume was asked for and its prefix matched).
 */
export interface ReadHandle {
  readonly file: StoredFile;
  readonly stream: Readable;
  readonly offset: number;
}

/** An interrupted upload the storage keeps for RESUME: its first `bytes` bytes and their digest. */
export interface PartialUpload {
  readonly bytes: number;
  readonly digest: string;
}

/** Where a request may reach: the user's folder ('' for the whole storage). */
export interface Jail {
  readonly jail?: string;
}

/** Which algorithm the digests of a request are in (the session's choice; SHA-256 by default). */
export interface HashChoice {
  readonly hash?: HashAlgorithm;
}

export interface ReadOptions extends Jail, HashChoice {
  /** Send only what follows `offset`, if the file's first `offset` bytes hash to `digest`. */
  readonly from?: ResumePoint;
}

export interface WriteOptions extends Jail, HashChoice {
  readonly size: number;
  /** Continue the kept partial upload of this name (RESUME_MISMATCH unless its prefix matches). */
  readonly resume?: ResumePoint;
  /** ADDFILE: fail with EXISTS if the name exists, checked now and again atomically at commit. */
  readonly createOnly: boolean;
  /** Report the size of the file the commit replaces (`replacedBytes`; costs a stat): for quotas. */
  readonly measureReplaced?: boolean;
  /**
   * Quotas: called at commit, holding the name against this server's other commits, DELETEs and
   * RENAMEs, with the size of the file about to be replaced (0: none). Throwing (QUOTA_EXCEEDED) stops
   * the commit with nothing published. An upload admitted for its growth over a file that was then
   * renamed or deleted away would otherwise store its whole size past the quota. Adapters without
   * such a lock (S3: quotas are per server there) may not call it.
   */
  readonly admitReplaced?: (replacedBytes: number) => void;
  /**
   * Called with the byte count whenever this write drops bytes kept from an earlier interrupted
   * upload of the name, so that quotas follow: a resume whose prefix does not match (the kept
   * bytes are deleted), a resume below the kept size (the rest is cut), a fresh upload staged over
   * them. (A resumed write that is aborted drops its prefix too; its caller knows that from `resumed`.)
   */
  readonly onKeptDropped?: (bytes: number) => void;
}

/** What LIST may be told besides where and in which algorithm. */
export interface ListOptions extends Jail, HashChoice {
  /** Never more files than this (TOO_LARGE). */
  readonly limit: number;
  /** The request is gone (its connection closed, the server stopped): stop walking. */
  readonly signal?: AbortSignal;
  /**
   * A page (adapters with `listsInPages`): instead of TOO_LARGE, the first `limit + 1` files in the
   * adapter's listing order (a stable order of names) that come strictly after `after` (a full
   * name; from the start if undefined). The caller sends `limit` of them and asks again from the
   * last one when there was one more.
   */
  readonly page?: { readonly after?: string; readonly afterFolder?: boolean };
  /**
   * LIST FOLDERS: every folder below `prefix` too (made by MKDIR or holding files), each just before
   * what it holds, counted like a file against `limit`. `after` may then name a folder
   * (`afterFolder`): the page goes on after its line (inside it, or past it when `shallow`).
   */
  readonly folders?: boolean;
  /** LIST SHALLOW: only the entries directly in `prefix`, never what lies below them (issue 17: `ls`). */
  readonly shallow?: boolean;
}

/** What the pipeline checked before a commit: the byte count, and the digest in its algorithm. */
export interface VerifiedContent {
  readonly size: number;
  readonly digest: string;
  readonly hash: HashAlgorithm;
}

/**
 * Data on its way in. Nothing is visible under the real name until `commit` resolves; `abort` (or a
 * failed commit) leaves the previous file of that name as it was.
 */
export interface StagedWrite {
  /**
   * Chunks are written here; the pipeline holds its input while a few MiB wait to be written
   * (`writableLength`, see WriteWindow), so any Writable that completes its writes when done fits.
   */
  readonly sink: Writable;
  /**
   * The whole file in one piece, instead of through `sink` (a BATCH's files arrive whole): a write
   * that keeps small files in memory takes the buffer as it is. Without it, the data goes through `sink`.
   */
  writeWhole?(data: Uint8Array): void;
  /** Makes the data durable and visible under its name, atomically. The caller verified size and digest. */
  commit(verified: VerifiedContent): Promise<CommittedFile>;
  abort(): Promise<void>;
  /** Set when this write continues a kept partial upload: the bytes there and their hash state. */
  readonly resumed?: { readonly offset: number; readonly hash: RunningHash };
  /**
   * The connection was lost mid-data: keep what arrived for a later resume if this write is
   * resumable, else the same as abort. Returns the bytes kept.
   */
  suspend(): Promise<number>;
}

/**
 * Where files live. Implementations throw RxferError with storage codes (NOT_FOUND, EXISTS,
 * NAME_CONFLICT, NAME_INVALID, NO_SPACE, STORAGE_FAILED), never raw errno errors.
 */
export interface StorageAdapter {
  readonly kind: string;
  /** Prepares the backing store (create folders, check access). Called once before serving. */
  init(): Promise<void>;
  /** Releases what `init` and later work started (threads, timers), once the server has stopped. */
  close?(): Promise<void>;
  /** `jail`: links may not lead outside this folder (a user's root), checked after resolution. */
  openRead(name: RemoteName, options?: ReadOptions): Promise<ReadHandle>;
  /** Size of the file now stored under `name`, if any (cheap: no hashing). */
  sizeOf(name: RemoteName, options?: Jail): Promise<number | undefined>;
  beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite>;
  /**
   * Files under the folder `prefix` ('' for everything), with their storage names, never more than
   * `limit` (more is TOO_LARGE: the client should narrow the prefix). Links and the server's own
   * staging and metadata files are not listed.
   */
  list(prefix: string, options: ListOptions): Promise<ListedFile[]>;
  /** Whether `list` honours `page` (LIST PAGED / LIST AFTER); otherwise a big folder is TOO_LARGE. */
  readonly listsInPages?: boolean;
  /** Whether `list` honours `folders` and `shallow` (greeting `list-options=folders,shallow`). */
  readonly listsFolders?: boolean;
  /** A file or folder, or NOT_FOUND. */
  stat(name: RemoteName, options?: Jail & HashChoice): Promise<FileStatus>;
  /** Deletes a file or an empty folder; returns the bytes freed. NOT_FOUND, NAME_CONFLICT (not empty). */
  remove(name: RemoteName, options?: Jail): Promise<number>;
  /** Renames a file or folder; never replaces an existing name (EXISTS). Parents of `to` are created. */
  rename(from: RemoteName, to: RemoteName, options?: Jail): Promise<void>;
  /** Creates a folder (and its parents); EXISTS if the name is taken. */
  makeFolder(name: RemoteName, options?: Jail): Promise<void>;
  /** Bytes stored under `prefix` ('' for everything), staging data included: the basis of quotas. */
  usage(prefix: string): Promise<number>;
  /**
   * Resume support, optional. Uploads of at least this many bytes are kept when their connection is
   * lost, and can be continued with `WriteOptions.resume`.
   */
  readonly resumableFromBytes?: number;
  /** The kept part of an interrupted upload of `name`, if any (BUSY while one is being written). */
  partialUpload?(name: RemoteName, options?: HashChoice): Promise<PartialUpload | undefined>;
  /** Deletes kept partial uploads untouched for `maxAgeMs`; returns the bytes freed. */
  expirePartialUploads?(maxAgeMs: number): Promise<number>;
}
