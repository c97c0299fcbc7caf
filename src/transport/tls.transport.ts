import { readFileSync } from 'node:fs';
import { createServer } from 'node:tls';
import { inject, injectable } from 'inversify';
import type { RxferConfig } from '../config/config.schema';
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
 * 10 s (or the idle timeout, if shorter), or a peer that opens connections and never speaks would
 * hold them for free.
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
      // Not half-open, unlike plain TCP: a peer that gives up mid-handshake (a client refusing our
      // certificate, say) sends its FIN before the handshake ends, and a half-open socket would then
      // sit there until the handshake timeout. TLS clients close with close_notify, not a half-close.
      allowHalfOpen: false,
      handshakeTimeout: Math.min(this.config.limits.idleTimeoutMs, 10_000),
    });
    // A failed handshake (scanner, wrong CA, plain TCP, silence) is the peer's problem, not a server
    // error, but its socket is ours to close: with a listener here Node leaves it open, uncounted by
    // any connection limit, and a peer could pile them up.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    return listenOn(server, host, port, 'secureConnection');
  }
}
