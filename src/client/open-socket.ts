import { connect, type NetConnectOpts, type Socket } from 'node:net';
import { RxferError } from '../errors/rxfer-error';

/** 1 MiB on the socket's write side as on the file's read side: a plain pipe runs ~40 % faster. */
const SOCKET_BUFFER_BYTES = 1024 * 1024;

/**
 * Starts a TCP connection and calls `attach` at once, before any byte can arrive, so the caller's
 * single reader sees the stream from its first byte. Resolves once connected.
 */
export const openSocket = (
  host: string,
  port: number,
  attach: (socket: Socket) => void,
): { socket: Socket; connected: Promise<void> } => {
  // net.Socket hands its options on to stream.Duplex; @types/node does not list the Duplex ones.
  const options: NetConnectOpts & { writableHighWaterMark: number } = {
    host,
    port,
    noDelay: true,
    writableHighWaterMark: SOCKET_BUFFER_BYTES,
  };
  const socket = connect(options);
  attach(socket);
  const connected = new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const reason = err instanceof RxferError ? err.message : (err.code ?? err.message);
      reject(new RxferError('CONNECTION_LOST', `cannot connect to ${host}:${port}: ${reason}`));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.removeListener('error', onError);
      socket.setNoDelay(true);
      resolve();
    });
  });
  return { socket, connected };
};
