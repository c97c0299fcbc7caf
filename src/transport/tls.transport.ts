import { readFileSync } from 'node:fs';
import { createServer } from 'node:tls';
import { inject, injectable } from 'inversify';
import { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { RxferError } from '../errors/rxfer-error';
import { listenOn } from './tcp.transport';
import { Listener, Transport } from './transport';

const readPem = (path: string, what: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new RxferError('CONFIG_INVALID', `server.tls.${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
};

/**
 * TLS 1.2+ (1.3 negotiated whenever the client has it). Sessions see a TLSSocket, which is a
 * net.Socket, so nothing past the transport knows the difference. The handshake must finish within
 * the idle timeout, or a peer that opens connections and never speaks would hold them for free.
 */
@injectable()
export class TlsTransport implements Transport {
  readonly kind = 'tls';

  constructor(@inject(TOKENS.Config) private readonly config: RxferConfig) {}

  listen(host: string, port: number): Promise<Listener> {
    const tls = this.config.server.tls!;
    const server = createServer({
      cert: readPem(tls.cert, 'cert'),
      key: readPem(tls.key, 'key'),
      minVersion: tls.minVersion,
      allowHalfOpen: true,
      handshakeTimeout: Math.min(this.config.limits.idleTimeoutMs, 30_000),
    });
    // Failed handshakes (scanners, wrong CA) are the peer's problem, not a server error.
    server.on('tlsClientError', () => undefined);
    return listenOn(server, host, port, 'secureConnection');
  }
}
