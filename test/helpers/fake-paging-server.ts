import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { formatListingLine } from '../../src/protocol/listing';

/** What every file of a fake paging server holds, and its digest. */
export const SERVED = Buffer.from('served\n');
export const SERVED_SHA256 = createHash('sha256').update(SERVED).digest('hex');

/** One request as the fake server read it: the command line and the lines that follow it. */
export interface FakeRequest {
  readonly verb: string;
  readonly args: readonly string[];
}

/**
 * A server that speaks just enough rxfer to list in pages (greeting `list=paged`), for tests of a
 * client facing a listing no real storage would give. Each connection gets its own handler from
 * `connected()` (state per connection: which page comes next); QUIT is answered here. A LIST AFTER
 * carries two lines after its command, every other request one.
 */
export const fakePagingServer = async (connected: () => (request: FakeRequest, socket: Socket) => void) => {
  const sockets = new Set<Socket>();
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.write('OK rxfer/1 caps=upload,addfile,download,list,auth,quit hash=sha256 max-line=4096 auth=optional list=paged\n');
    const answer = connected();
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (;;) {
        const lines = buffered.split('\n');
        const verb = lines[0]!;
        const wants = verb === 'QUIT' ? 1 : verb.startsWith('LIST AFTER') ? 3 : 2;
        if (lines.length <= wants) return;
        buffered = lines.slice(wants).join('\n');
        if (verb === 'QUIT') {
          socket.end('OK bye\n');
          return;
        }
        answer({ verb, args: lines.slice(1, wants) }, socket);
        if (socket.destroyed || socket.writableEnded) return;
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    // Connections a test left open are cut: the server stops by itself.
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
};

/** A LIST answer of `names` (each SERVED), saying `more` when another page follows. */
export const listReply = (names: readonly string[], more: boolean): string => {
  const body = names.map((name) => formatListingLine({ name, size: SERVED.length, mtimeMs: 0, digest: SERVED_SHA256 })).join('');
  return `OK list ${Buffer.byteLength(body)} ${names.length}${more ? ' more' : ''}\n${body}`;
};

/** A DOWNLOAD answer: SERVED, whatever the name. */
export const sendServed = (socket: Socket): void => {
  socket.write(`OK ${SERVED.length} ${SERVED_SHA256}\n`);
  socket.write(SERVED);
};
