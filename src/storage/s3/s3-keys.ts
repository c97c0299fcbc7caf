import { createHash } from 'node:crypto';
import { RxferError } from '../../errors/rxfer-error';
import { RESERVED_PREFIX } from '../../protocol/remote-name';

/** S3 refuses keys longer than this many bytes of UTF-8 (rxfer names may be up to 4096). */
const MAX_KEY_BYTES = 1024;

/**
 * Where things live in the bucket. User files are plain objects under their own names (any S3 tool
 * sees them as files), folders made by MKDIR are `name/` markers, and everything the servers keep
 * for themselves sits under `<prefix>.rxfer/`, a name no client can send (PROTOCOL.md reserves it).
 * Metadata keys use the SHA-256 of the object key: short, and the same on every instance.
 */
export class S3Keys {
  readonly reserved: string;

  constructor(readonly prefix: string) {
    this.reserved = `${prefix}${RESERVED_PREFIX}/`;
  }

  /** The object key of a storage name; NAME_INVALID if S3 cannot hold it. */
  object(name: string): string {
    const key = this.prefix + name;
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new RxferError('NAME_INVALID', `${name} is too long for this storage (S3 keys are at most ${MAX_KEY_BYTES} bytes)`);
    return key;
  }

  /** The marker object MKDIR leaves for a folder. */
  folder(name: string): string {
    return this.object(name) + '/';
  }

  /** Everything under a folder ('' for the whole tree). */
  under(folder: string): string {
    return folder === '' ? this.prefix : this.prefix + folder + '/';
  }

  /** The storage name of an object key, or undefined for keys that are not user files. */
  nameOf(key: string): string | undefined {
    if (!key.startsWith(this.prefix) || key.startsWith(this.reserved) || key.endsWith('/')) return undefined;
    return key.slice(this.prefix.length);
  }

  private id(key: string): string {
    return createHash('sha256').update(key).digest('hex');
  }

  /** The lease that serialises changes of one key across instances (see NameLease). */
  lease(key: string): string {
    return `${this.reserved}leases/${this.id(key)}`;
  }

  get leases(): string {
    return `${this.reserved}leases/`;
  }

  /** The manifest of the kept (resumable) upload of a key: upload id, parts, hash state. */
  manifest(key: string): string {
    return `${this.reserved}partials/${this.id(key)}.json`;
  }

  get manifests(): string {
    return `${this.reserved}partials/`;
  }

  /** A fresh staging key: multipart uploads land here and are copied to their name at commit. */
  staging(uniqueId: string): string {
    return `${this.reserved}staging/${uniqueId}`;
  }

  get stagingArea(): string {
    return `${this.reserved}staging/`;
  }
}

/** Object metadata names for the verified digests (`x-amz-meta-rxfer-sha256`, …). */
export const digestMetaKey = (algorithm: string): string => `rxfer-${algorithm}`;
