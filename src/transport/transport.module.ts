import { ContainerModule } from 'inversify';
import { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { TcpTransport } from './tcp.transport';
import { TlsTransport } from './tls.transport';
import { Transport } from './transport';

/** TLS when `server.tls` is configured, plain TCP otherwise; nothing past the transport changes. */
export const transportModule = new ContainerModule(({ bind }) => {
  bind(TcpTransport).toSelf().inSingletonScope();
  bind(TlsTransport).toSelf().inSingletonScope();
  bind(TOKENS.Transport)
    .toResolvedValue((config: RxferConfig, tcp: TcpTransport, tls: TlsTransport): Transport => (config.server.tls ? tls : tcp), [TOKENS.Config, TcpTransport, TlsTransport])
    .inSingletonScope();
});
