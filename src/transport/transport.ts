import { AddressInfo, Socket } from 'node:net';
import { Observable } from 'rxjs';

/** A bound listening endpoint. Sockets it yields may be plain TCP or TLS; the actor cannot tell. */
export interface Listener {
  readonly address: AddressInfo;
  readonly connection$: Observable<Socket>;
  /** Stops accepting; connections already open are the server's to end. */
  close(): Promise<void>;
}

export interface Transport {
  readonly kind: string;
  listen(host: string, port: number): Promise<Listener>;
}
