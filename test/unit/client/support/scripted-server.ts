import { createServer, type AddressInfo, type Socket } from 'node:net';
import { formatListingLine, type ListingEntry } from '../../../../src/protocol/listing';

/**
 * A server that speaks just enough rxfer for tests of the client's listing requests: a greeting the
 * test chooses (paged or not, list-options or not), every request recorded as the exact bytes of its
 * lines, and each answered by the test's `answer` (raw text; the socket for a cut mid-reply).
 * test/helpers/fake-paging-server.ts has a fixed greeting; this one is for the greeting's variants.
 */

export const GREETING = 'OK rxfer/1 caps=upload,addfile,download,list,auth,quit hash=sha256 max-line=4096 auth=optional';

export interface ScriptedServer {
  readonly port: number;
  /** Each request as the client sent it: its lines joined with "\n", ending with one. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Lines each request carries, its command line included: LIST AFTER three, QUIT one, the rest two. */
const linesOf = (verb: string): number => (verb === 'QUIT' ? 1 : verb.startsWith('LIST AFTER') ? 3 : 2);

export const scriptedServer = async (greetingExtra: string, answer: (request: string, socket: Socket, n: number) => void): Promise<ScriptedServer> => {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write(`${GREETING}${greetingExtra}\n`);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (;;) {
        const lines = buffered.split('\n');
        const wants = linesOf(lines[0]!);
        if (lines.length <= wants) return;
        const request = `${lines.slice(0, wants).join('\n')}\n`;
        buffered = lines.slice(wants).join('\n');
        if (lines[0] === 'QUIT') {
          socket.end('OK bye\n');
          return;
        }
        requests.push(request);
        answer(request, socket, requests.length);
        if (socket.destroyed || socket.writableEnded) return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
};

/** A LIST answer of `entries` (files of size 1 unless given), with `more` when asked. */
export const listAnswer = (entries: readonly (string | ListingEntry)[], more = false, count?: number): string => {
  const body = entries.map((e) => formatListingLine(typeof e === 'string' ? { name: e, size: 1, mtimeMs: 0 } : e)).join('');
  return `OK list ${Buffer.byteLength(body)} ${count ?? entries.length}${more ? ' more' : ''}\n${body}`;
};
