import { RxferError } from '../../errors/rxfer-error';

/** What the SDK throws: a service error with a name and an HTTP status, or a network error. */
interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

export const statusOf = (err: unknown): number | undefined => (err as SdkError | undefined)?.$metadata?.httpStatusCode;

export const isNotFound = (err: unknown): boolean => {
  const name = (err as SdkError | undefined)?.name;
  return statusOf(err) === 404 || name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchUpload';
};

/** A conditional request lost (If-None-Match: * on an existing key, If-Match on a changed one). */
export const isPreconditionFailed = (err: unknown): boolean => {
  const name = (err as SdkError | undefined)?.name;
  // AWS answers 409 ConditionalRequestConflict when two conditional writes overlap.
  return statusOf(err) === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict';
};

/**
 * Maps an S3 failure to a storage code. The SDK has already retried what is worth retrying
 * (throttling, 5xx, dropped connections) with its backoff; what reaches here is final. Messages name
 * the remote file and the S3 error, never credentials or the endpoint's internals.
 */
export const s3Error = (err: unknown, action: string, name: string): RxferError => {
  if (err instanceof RxferError) return err;
  const sdk = (err ?? {}) as SdkError;
  const status = statusOf(err);
  const what = sdk.name ?? sdk.code ?? 'error';
  if (isNotFound(err)) return new RxferError('NOT_FOUND', `${name} does not exist`);
  if (isPreconditionFailed(err)) return new RxferError('EXISTS', `${name} already exists`);
  if (what === 'QuotaExceeded' || what === 'EntityTooLarge' || status === 507) {
    return new RxferError('NO_SPACE', `no space left to ${action} ${name}: the object store said ${what}`, { s3: what });
  }
  const detail = status === undefined ? `${what}${sdk.code && sdk.code !== what ? ` (${sdk.code})` : ''}` : `${what} (HTTP ${status})`;
  return new RxferError('STORAGE_FAILED', `cannot ${action} ${name}: the object store failed (${detail}); nothing changed`, { s3: what, ...(status !== undefined && { status }) });
};
