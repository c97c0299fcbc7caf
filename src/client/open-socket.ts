import { connect, isIP, type NetConnectOpts, type Socket } from 'node:net';
import { RxferError } from '../errors/rxfer-error';

/** 1 MiB on the socket's write side as on the file's read side: a plain pipe runs ~40 % faster. */
const SOCKET_BUFFER_BYTES = 1024 * 1024;

/**
 * Starts a TCP connection and calls `attach` at once, before any byte can arrive, so the caller's
 * single reader sees the stream from its first byte. Resolves once connected.
 */
export interface TlsOptions {
  /**
   * The CA certificates (PEM) to trust *instead of* Node's default ones (its bundled roots and
   * NODE_EXTRA_CA_CERTS's), as Node's own `ca` option does: a private CA for a private server.
   * Adding them to the default store instead would need a copy of it, and a copy made here by hand
   * trusted what Node itself refuses (certificates in the "TRUSTED CERTIFICATE" form, a store read
   * at connect time instead of start-up) or lost what it trusts (--use-openssl-ca): the hostile pass
   * of 2026-12-05 (e).
   */
  readonly ca?: string | Buffer;
}

const connectTls = (options: NetConnectOpts, host: string, tls: TlsOptions): Socket => {
  // Loaded only for TLS: node:tls costs a plain `rxfer put` ≈ 6 ms of its start-up (issue 20).
  const nodeTls = require('node:tls') as typeof import('node:tls');
  return nodeTls.connect({
    ...options,
    minVersion: 'TLSv1.2',
    ...(tls.ca !== undefined && { ca: tls.ca }),
    // SNI takes host names only; an IP address is checked against the certificate's IP SANs.
    ...(isIP(host) === 0 && { servername: host }),
  });
};

export const openSocket = (
  host: string,
  port: number,
  attach: (socket: Socket) => void,
  tls?: TlsOptions,
): { socket: Socket; connected: Promise<void> } => {
  // net.Socket hands its options on to stream.Duplex; @types/node does not list the Duplex ones.
  const options: NetConnectOpts & { writableHighWaterMark: number } = {
    host,
    port,
    noDelay: true,
    writableHighWaterMark: SOCKET_BUFFER_BYTES,
  };
  const socket = tls ? connectTls(options, host, tls) : connect(options);
  attach(socket);
  const connected = new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const reason = err instanceof RxferError ? err.message : (err.code ?? err.message);
      // The detail lets a caller explain it in words (the CLI does): refused, unknown host, TLS on a plain port.
      const detail: Record<string, string | number> = err instanceof RxferError ? { ...err.detail, host, port } : { host, port, reason: err.code ?? 'ERROR' };
      reject(new RxferError(err instanceof RxferError ? err.code : 'CONNECTION_LOST', `cannot connect to ${host}:${port}: ${reason}`, detail, { cause: err }));
    };
    socket.once('error', onError);
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      socket.removeListener('error', onError);
      socket.setNoDelay(true);
      resolve();
    });
  });
  return { socket, connected };
};
