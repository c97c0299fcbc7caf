import { createServer, connect, Socket } from 'node:net';

/**
 * Both ends of one real TCP connection on 127.0.0.1; `close()` destroys both and the listener.
 * `allowHalfOpen`: the server's end stays writable after the client's FIN; `clientAllowsHalfOpen`:
 * the client's end stays open after the server's FIN (a peer that never ends its side).
 */
export const socketPair = async (
  options: { allowHalfOpen?: boolean; clientAllowsHalfOpen?: boolean } = {},
): Promise<{ server: Socket; client: Socket; close: () => Promise<void> }> => {
  const listener = createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as { port: number };
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: options.clientAllowsHalfOpen ?? false });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const server = await accepted;
  return {
    server,
    client,
    close: async () => {
      server.destroy();
      client.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
};
