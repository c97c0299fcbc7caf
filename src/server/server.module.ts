import { ContainerModule } from 'inversify';
import { TOKENS } from '../container/tokens';
import { RxferServer } from './rxfer-server';

export const serverModule = new ContainerModule(({ bind }) => {
  bind(TOKENS.Server).to(RxferServer).inSingletonScope();
});
