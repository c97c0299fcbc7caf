import { createHash } from 'node:crypto';
import { type AddressInfo, type Socket, createServer } from 'node:net';

/**
 * A server that speaks just enough rxfer for `rxfer put -r` with BATCH (hostile pass n): it offers
 * BATCH in its greeting, answers every LIST with an empty listing, reads BATCH requests byte for
 * byte and answers each file `OK file data recv <size> <digest>` (the true digest of what arrived),
 * until `okFiles` files have been answered in all; at the next file it does what `then` says: cut
 * the connection (`reset`), close it cleanly after what it wrote (`end`), or send a closing
 * `ERR SHUTTING_DOWN` and close (`shutdown`). `answered` lists the names it said OK for, in order.
 */
export interface BatchFakeServer {
  readonly port: number;
  readonly answered: string[];
  close(): Promise<void>;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export const batchFakeServer = async (okFiles: number, then: 'reset' | 'end' | 'shutdown'): Promise<BatchFakeServer> => {
  const answered: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write('OK rxfer/1 caps=upload,addfile,batch,download,list,stat,auth,quit hash=sha256 max-line=4096 batch-files=64 batch-bytes=1048576 auth=optional list=paged\n');
    let input = Buffer.alloc(0);
    let done = false;
    // What the parser waits for: a request line, a LIST's name line(s), or a batch's parts.
    let state: { kind: 'command' } | { kind: 'lines'; left: number } | { kind: 'batch'; files: number; step: 'entry' | 'name' | 'data'; size: number; name: string } = { kind: 'command' };
    const line = (): string | undefined => {
      const at = input.indexOf(0x0a);
      if (at === -1) return undefined;
      const text = input.subarray(0, at).toString('utf8');
      input = input.subarray(at + 1);
      return text;
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      input = Buffer.concat([input, chunk]);
      for (;;) {
        if (state.kind === 'command') {
          const text = line();
          if (text === undefined) return;
          if (text.startsWith('LIST AFTER')) state = { kind: 'lines', left: 2 };
          else if (text.startsWith('LIST')) state = { kind: 'lines', left: 1 };
          else if (text.startsWith('BATCH ')) state = { kind: 'batch', files: Number(text.slice(6)), step: 'entry', size: 0, name: '' };
          else if (text === 'QUIT') {
            socket.end('OK bye\n');
            return;
          } else {
            socket.end('ERR BAD_COMMAND this fake server knows only LIST, BATCH and QUIT\n');
            return;
          }
        } else if (state.kind === 'lines') {
          if (line() === undefined) return;
          if (--state.left === 0) {
            socket.write('OK list 0 0\n');
            state = { kind: 'command' };
          }
        } else if (state.step === 'entry') {
          const text = line();
          if (text === undefined) return;
          state.size = Number(text.split(' ')[0]);
          state.step = 'name';
        } else if (state.step === 'name') {
          const text = line();
          if (text === undefined) return;
          state.name = text;
          state.step = 'data';
        } else {
          if (input.length < state.size) return;
          const data = input.subarray(0, state.size);
          input = input.subarray(state.size);
          if (answered.length >= okFiles) {
            done = true;
            if (then === 'reset') socket.resetAndDestroy();
            else if (then === 'end') socket.end();
            else socket.end('ERR SHUTTING_DOWN the server is stopping; try again later\n');
            return;
          }
          answered.push(state.name);
          socket.write(`OK file data recv ${data.length} ${sha256(data)}\n`);
          state = --state.files === 0 ? { kind: 'command' } : { ...state, step: 'entry' };
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    answered,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
};
