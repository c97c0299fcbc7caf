import { ContainerModule } from 'inversify';
import { TOKENS } from '../container/tokens';
import { TcpTransport } from './tcp.transport';

/** TCP today; TLS binds here too, picked by config, and nothing past the transport changes. */
export const transportModule = new ContainerModule(({ bind }) => {
  bind(TOKENS.Transport).to(TcpTransport).inSingletonScope();
});
