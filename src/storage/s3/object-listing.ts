import { ListObjectsV2Command, S3Client, _Object } from '@aws-sdk/client-s3';
import { RxferError } from '../../errors/rxfer-error';
import type { HashAlgorithm } from '../../integrity/hash-algorithm';
import { parseRemoteName } from '../../protocol/remote-name';
import type { FileStatus, ListedFile } from '../storage-adapter';
import { DigestCache } from './digest-cache';
import { ObjectReads } from './object-reads';
import { S3Keys } from './s3-keys';
import { unquote } from './upload-manifest';

/** HEADs in flight for one LIST's digests (ListObjectsV2 gives ETags, not metadata). */
const HEADS_AT_ONCE = 16;

/**
 * LIST, STAT and usage over ListObjectsV2, 1,000 keys a page. A LIST is recursive like the local
 * adapter's walk: one flat listing under the folder (the root is listed by its common prefixes, so
 * the servers' own `.rxfer/` keys are skipped, not paged through). Digests come from the objects'
 * metadata, one HEAD per file the first time, then from this process's DigestCache by ETag.
 */
export class ObjectListing {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly keys: S3Keys,
    private readonly reads: ObjectReads,
    private readonly digests: DigestCache,
  ) {}

  /** Every object under `prefix` (a key prefix), page by page; `delimiter` for one level only. */
  async *objects(prefix: string, delimiter?: string, signal?: AbortSignal): AsyncGenerator<{ object?: _Object; folder?: string }> {
    let token: string | undefined;
    do {
      if (signal?.aborted) throw new RxferError('SHUTTING_DOWN', 'the listing was abandoned: its connection is gone');
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }), { abortSignal: signal });
      for (const common of page.CommonPrefixes ?? []) yield { folder: common.Prefix! };
      for (const object of page.Contents ?? []) yield { object };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The user files under a folder ('' for all), skipping the servers' own keys and folder markers. */
  async *files(folder: string, signal?: AbortSignal): AsyncGenerator<_Object> {
    if (folder !== '') {
      for await (const { object } of this.objects(this.keys.under(folder), undefined, signal)) if (object) yield object;
      return;
    }
    for await (const { object, folder: sub } of this.objects(this.keys.prefix, '/', signal)) {
      if (object) yield object;
      else if (sub && sub !== this.keys.reserved) for await (const { object: inner } of this.objects(sub, undefined, signal)) if (inner) yield inner;
    }
  }

  /**
   * Keys (and with `delimiter` common prefixes) under `prefix` in key order, from after
   * `startAfter`, 1,000 a request: a page of a LIST holds only what it sends (issue 17). The
   * servers' own `.rxfer/` keys are stepped over, not paged through.
   */
  private async *keysFrom(prefix: string, delimiter: string | undefined, startAfter: string | undefined, signal?: AbortSignal): AsyncGenerator<{ key: string; object?: _Object }> {
    let from = startAfter;
    let token: string | undefined;
    for (;;) {
      if (signal?.aborted) throw new RxferError('SHUTTING_DOWN', 'the listing was abandoned: its connection is gone');
      const page = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: delimiter, ...(token ? { ContinuationToken: token } : from !== undefined && { StartAfter: from }) }),
        { abortSignal: signal },
      );
      // A page's files and common prefixes come in two lists, each in key order: merged, one order.
      const items = [...(page.CommonPrefixes ?? []).map((common) => ({ key: common.Prefix! })), ...(page.Contents ?? []).map((object) => ({ key: object.Key!, object }))];
      items.sort((a, b) => compareKeys(a.key, b.key));
      let jumped = false;
      for (const item of items) {
        if (item.key.startsWith(this.keys.reserved)) {
          if (delimiter || page.IsTruncated !== true) continue;
          // Past every key under `.rxfer/` at once ("0" follows "/"): the next request starts there.
          from = this.keys.reserved.slice(0, -1) + '0';
          jumped = true;
          break;
        }
        yield item;
      }
      token = jumped ? undefined : page.IsTruncated ? page.NextContinuationToken : undefined;
      if (!jumped && !token) return;
    }
  }

  /**
   * LIST in key order (UTF-8 bytes, S3's own): the files under `folder`, with `folders` a line for
   * each folder (a marker made by MKDIR, or a prefix that holds files) just before its keys, and
   * with `shallow` only the folder's own entries (one level, by common prefixes). A `page` resumes
   * with StartAfter at its cursor (past a folder cursor's keys when `shallow`) and stops at
   * `limit + 1` entries, so a big folder is never built whole. `signal`: the request is gone, so
   * the listing (and its HEADs) stop.
   */
  async list(folder: string, limit: number, algorithm: HashAlgorithm, signal?: AbortSignal, shape: ListShape = {}): Promise<ListedFile[]> {
    const { page, folders = false, shallow = false } = shape;
    const base = this.keys.under(folder);
    const max = page ? limit + 1 : limit;
    const found: { file: ListedFile; key?: string; etag?: string }[] = [];
    // The folders whose lines are given above the last entry: each folder's keys are contiguous in
    // key order, so a folder's line is due where this chain changes.
    let chain: string[] = [];
    const cursor = page?.after !== undefined && (folder === '' || page.after.startsWith(folder + '/')) ? page.after : undefined;
    let startAfter: string | undefined;
    if (cursor !== undefined) {
      startAfter = this.keys.object(cursor) + (page?.afterFolder ? '/' : '');
      chain = foldersAbove(folder, cursor, page?.afterFolder === true);
    }
    const full = () => {
      if (found.length < max) return false;
      if (!page) throw new RxferError('TOO_LARGE', `more than ${limit} ${folders ? 'entries' : 'files'} under ${folder || 'the root'}; list a narrower folder`);
      return true;
    };
    const enter = (wanted: string[], mtimes: Map<string, number>) => {
      let same = 0;
      while (same < chain.length && same < wanted.length && chain[same] === wanted[same]) same++;
      for (const name of wanted.slice(same)) {
        if (full()) return;
        found.push({ file: { name, size: 0, mtimeMs: mtimes.get(name) ?? 0, folder: true } });
      }
      chain = wanted;
    };
    for await (const { key, object } of this.keysFrom(base, shallow ? '/' : undefined, startAfter, signal)) {
      // A store that hands the cursor back (a common prefix at StartAfter) does not list it twice.
      if (startAfter !== undefined && compareKeys(key, startAfter) <= 0) continue;
      if (key === base) continue; // the folder's own marker
      if (full()) break;
      if (key.endsWith('/')) {
        // A common prefix (SHALLOW) or a marker (MKDIR): a folder.
        const name = key.slice(this.keys.prefix.length, -1);
        if (!folders || !isValidName(name)) continue;
        enter(foldersAbove(folder, name, true), new Map([[name, object?.LastModified?.getTime() ?? 0]]));
        continue;
      }
      const name = this.keys.nameOf(key);
      if (name === undefined || !isValidName(name)) continue;
      if (folders) enter(foldersAbove(folder, name, false), new Map());
      if (full()) break;
      const etag = unquote(object?.ETag ?? '');
      const size = object?.Size ?? 0;
      const digest = this.digests.get(key, etag, size, algorithm);
      found.push({ key, etag, file: { name, size, mtimeMs: object?.LastModified?.getTime() ?? 0, ...(digest && { digest }) } });
    }
    const unknown = found.filter((entry): entry is { file: ListedFile; key: string; etag: string } => entry.key !== undefined && entry.file.digest === undefined);
    for (let i = 0; i < unknown.length; i += HEADS_AT_ONCE) {
      if (signal?.aborted) throw new RxferError('SHUTTING_DOWN', 'the listing was abandoned: its connection is gone');
      await Promise.all(unknown.slice(i, i + HEADS_AT_ONCE).map((entry) => this.fillDigest(entry, algorithm)));
    }
    return found.map((entry) => entry.file);
  }

  /** The digest from the object's metadata; `-` in the listing if it has none (never read for LIST). */
  private async fillDigest(entry: { file: ListedFile; key: string; etag: string }, algorithm: HashAlgorithm): Promise<void> {
    const version = await this.reads.head(entry.key).catch(() => undefined);
    if (!version || version.etag !== entry.etag) return;
    this.digests.remember(version.key, version.etag, version.size, version.digests);
    const digest = await this.reads.digestOf(version, algorithm, false);
    if (digest) entry.file = { ...entry.file, digest };
  }

  /** A file (HEAD), else a folder (a marker or anything under it), else NOT_FOUND. */
  async stat(name: string, algorithm: HashAlgorithm): Promise<FileStatus> {
    const version = await this.reads.head(this.keys.object(name));
    if (version) {
      const digest = await this.reads.digestOf(version, algorithm, false);
      return { type: 'file', size: version.size, mtimeMs: version.mtimeMs, ...(digest && { digest }) };
    }
    const under = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keys.under(name), MaxKeys: 1 }));
    const first = under.Contents?.[0];
    if (!first) throw new RxferError('NOT_FOUND', `${name} does not exist`);
    const isMarker = first.Key === this.keys.folder(name);
    return { type: 'folder', size: 0, mtimeMs: isMarker ? (first.LastModified?.getTime() ?? 0) : 0 };
  }

  /** Bytes of the user files under a folder ('' for all). */
  async usage(folder: string): Promise<number> {
    let total = 0;
    for await (const object of this.files(folder)) total += object.Size ?? 0;
    return total;
  }
}

/** What a LIST asks besides where: a page, folder lines, one level only (see ListOptions). */
export interface ListShape {
  readonly page?: { readonly after?: string; readonly afterFolder?: boolean };
  readonly folders?: boolean;
  readonly shallow?: boolean;
}

/** S3's order of keys: their UTF-8 bytes (not JavaScript's UTF-16 code units, which differ past U+FFFF). */
const compareKeys = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** The folders from below `folder` down to `name`'s parent (and `name` itself if it is a folder). */
const foldersAbove = (folder: string, name: string, itself: boolean): string[] => {
  const base = folder === '' ? '' : folder + '/';
  const segments = name.slice(base.length).split('/');
  const upTo = itself ? segments.length : segments.length - 1;
  const chain: string[] = [];
  for (let i = 1; i <= upTo; i++) chain.push(base + segments.slice(0, i).join('/'));
  return chain;
};

/** Keys written by other tools may not be names a client could send: those are not listed. */
const isValidName = (name: string): boolean => {
  try {
    parseRemoteName(name);
    return true;
  } catch {
    return false;
  }
};
