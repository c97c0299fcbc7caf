/** The library's public surface: embed a server, or use the client. */
export { startServer } from './server/start-server';
export type { RunningServer, StartOptions } from './server/start-server';
export { loadConfig, parseConfig } from './config/load-config';
export type { RxferConfig, RxferConfigInput } from './config/config.schema';
export { TOKENS } from './container/tokens';
export type { StorageAdapter, StagedWrite, StoredFile, ReadHandle } from './storage/storage-adapter';
export { LocalFsStorage } from './storage/local-fs.storage';
export { MemoryStorage } from './storage/memory.storage';
export { RxferError } from './errors/rxfer-error';
export type { ErrorCode } from './errors/error-code';
