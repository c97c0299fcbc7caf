export { RxferClient } from './rxfer-client';
export type {
  ConnectOptions,
  DownloadOptions,
  ProgressListener,
  TransferResult,
  UploadMode,
  UploadOptions,
} from './client-options';
export { RxferError } from '../errors/rxfer-error';
export type { ErrorCode } from '../errors/error-code';
