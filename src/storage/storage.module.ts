import { ContainerModule } from 'inversify';
import { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { LocalFsStorage } from './local-fs.storage';
import { MemoryStorage } from './memory.storage';
import { StorageAdapter } from './storage-adapter';

const adapterFor = ({ storage }: RxferConfig): StorageAdapter => {
  switch (storage.kind) {
    case 'memory':
      return new MemoryStorage();
    case 's3': {
      // Loaded only when used: the AWS SDK takes ≈ 180 ms to load, which local servers need not pay.
      const { S3Storage } = require('./s3/s3.storage') as typeof import('./s3/s3.storage');
      return new S3Storage(storage.s3);
    }
    default:
      return new LocalFsStorage(storage.root);
  }
};

/** The storage adapter is chosen by `storage.kind`; tests and embedders rebind TOKENS.Storage. */
export const storageModule = new ContainerModule(({ bind }) => {
  bind(TOKENS.Storage).toResolvedValue(adapterFor, [TOKENS.Config]).inSingletonScope();
});
