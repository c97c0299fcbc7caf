import { ContainerModule } from 'inversify';
import { TOKENS } from '../container/tokens';
import { ConnectionActor } from './connection-actor';

/**
 * One ConnectionActor serves every connection: `run(socket)` builds all per-connection state inside
 * a `defer`, so a singleton is enough and no child container is made per socket.
 */
export const sessionModule = new ContainerModule(({ bind }) => {
  bind(TOKENS.ConnectionActor).to(ConnectionActor).inSingletonScope();
});
