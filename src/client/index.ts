export { RxferClient } from './rxfer-client';
export type { BatchLimits } from './batch-queue';
export type {
  ConnectOptions,
  DownloadOptions,
  KeptUpload,
  ProgressListener,
  TransferResult,
  UploadMode,
  UploadOptions,
} from './client-options';
export { RxferError } from '../errors/rxfer-error';
export type { ErrorCode } from '../errors/error-code';
export { downloadTree } from './download-tree';
export type { TreeResult } from './download-tree';
export { localPathFor } from './local-target';
export type { ListingEntry } from '../protocol/listing';
export type { ListingPage } from './list.request';
export { uploadTree } from './upload-tree';
export type { RemoteStatus } from './file-op.request';
