import { ErrorCode, closesConnection } from './error-code';

export type ErrorDetail = Readonly<Record<string, number | string>>;

/**
 * The one error type rxfer raises and reports. The message is built by the caller from the real
 * numbers, before any state is reset, so that it never lies (see NestJS #15472 in STYLE.md).
 */
export class RxferError extends Error {
  override readonly name = 'RxferError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail?: ErrorDetail,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get closesConnection(): boolean {
    return closesConnection(this.code);
  }
}

/** Turns anything thrown into an RxferError; unknown failures become INTERNAL with their message. */
export const toRxferError = (err: unknown): RxferError => {
  if (err instanceof RxferError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RxferError('INTERNAL', message, undefined, { cause: err });
};
