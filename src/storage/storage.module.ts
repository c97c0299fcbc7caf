import { ContainerModule } from 'inversify';
import { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { LocalFsStorage } from './local-fs.storage';
import { MemoryStorage } from './memory.storage';
import { StorageAdapter } from './storage-adapter';

/** The storage adapter is chosen by `storage.kind`; tests and embedders rebind TOKENS.Storage. */
export const storageModule = new ContainerModule(({ bind }) => {
  bind(TOKENS.Storage)
    .toResolvedValue(
      (config: RxferConfig): StorageAdapter => (config.storage.kind === 'memory' ? new MemoryStorage() : new LocalFsStorage(config.storage.root)),
      [TOKENS.Config],
    )
    .inSingletonScope();
});
