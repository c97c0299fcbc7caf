import { AddressInfo, Server, Socket, createServer } from 'node:net';
import { injectable } from 'inversify';
import { Subject } from 'rxjs';
import { Listener, Transport } from './transport';

/** Wraps a listening net.Server (or tls.Server, which extends it) as a Listener. */
export const listenOn = (server: Server, host: string, port: number, connectionEvent = 'connection'): Promise<Listener> =>
  new Promise((resolve, reject) => {
    const connection$ = new Subject<Socket>();
    server.on(connectionEvent, (socket: Socket) => connection$.next(socket));
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve({
        address: server.address() as AddressInfo,
        connection$: connection$.asObservable(),
        close: () =>
          new Promise<void>((done) => {
            connection$.complete();
            server.close(() => done());
          }),
      });
    });
  });

/**
 * Plain TCP, for loopback and trusted networks. Half-open is allowed so that a client which shuts
 * down its sending side after the last request (`nc -N`) still receives every reply; Nagle is off
 * because replies are small and a client is usually waiting for them.
 */
@injectable()
export class TcpTransport implements Transport {
  readonly kind = 'tcp';

  listen(host: string, port: number): Promise<Listener> {
    return listenOn(createServer({ allowHalfOpen: true, noDelay: true }), host, port);
  }
}
