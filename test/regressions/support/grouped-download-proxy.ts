import { createHash } from 'node:crypto';
import { createServer, connect as tcp, type AddressInfo, type Server, type Socket } from 'node:net';
import { formatListingLine } from '../../../src/protocol/listing';
import { fakePagingServer } from '../../helpers/fake-paging-server';

/**
 * Helpers for the hostile pass on grouped downloads (get -r's small files in groups of 16,
 * RxferClient.downloadFiles): a proxy in front of the real server that records what the server
 * sent and cuts the connection at a chosen byte of it, a parser that finds where each reply line and
 * body of that stream begins and ends (the places worth cutting at), and a fake server that lists a
 * tree of its choosing and answers each DOWNLOAD as a test script says (a server that lies).
 * Everything binds 127.0.0.1.
 */

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

const listen = async (server: Server): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

export interface CutProxy {
  readonly port: number;
  /** Server-to-client bytes of each connection so far, in order of connection. */
  readonly downstream: Buffer[];
  /** The next connections are cut once this many server-to-client bytes were passed on (undefined: never). */
  cutAt: number | undefined;
  close(): Promise<void>;
}

/**
 * A TCP proxy to the server on 127.0.0.1:`port`. Client bytes pass as they come; the server's pass
 * until `cutAt` bytes of them went through; then the server's socket is destroyed and the client's
 * ended right after that last slice (the client reads every byte up to the cut, then the end).
 */
export const cutProxy = async (port: number): Promise<CutProxy> => {
  const sockets = new Set<Socket>();
  const downstream: Buffer[] = [];
  const proxy: CutProxy = {
    port: 0,
    downstream,
    cutAt: undefined,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((client) => {
    const cutAt = proxy.cutAt;
    const upstream = tcp(port, '127.0.0.1');
    const record: Buffer[] = [];
    const index = downstream.push(Buffer.alloc(0)) - 1;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    let passed = 0;
    let cut = false;
    const destroyBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (!cut) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (cut) return;
      let slice = chunk;
      if (cutAt !== undefined && passed + chunk.length >= cutAt) {
        slice = chunk.subarray(0, cutAt - passed);
        cut = true;
        upstream.destroy();
      }
      passed += slice.length;
      record.push(slice);
      downstream[index] = Buffer.concat(record);
      // A FIN after the last slice, not a reset: a reset may make the client's kernel drop bytes it
      // had received but not yet handed over, and the cut would not be where it was asked for.
      if (cut) client.end(slice);
      else client.write(slice);
    });
    client.on('close', destroyBoth);
    upstream.on('close', () => {
      if (!cut) client.end();
    });
  });
  (proxy as { port: number }).port = await listen(server);
  return proxy;
};

/** A part of a recorded server stream: a reply line (with its `\n`) or the body after one. */
export interface StreamPart {
  readonly kind: 'line' | 'body';
  readonly start: number;
  readonly end: number;
  readonly text?: string;
}

/**
 * The parts of a server's stream to a client that asked LIST (PAGED) then DOWNLOADs: each line, and
 * the body a LIST or DOWNLOAD reply announced. Good enough for the real server's replies.
 */
export const partsOf = (stream: Buffer): StreamPart[] => {
  const parts: StreamPart[] = [];
  let at = 0;
  while (at < stream.length) {
    const nl = stream.indexOf(0x0a, at);
    if (nl === -1) {
      parts.push({ kind: 'line', start: at, end: stream.length, text: stream.subarray(at).toString() });
      break;
    }
    const text = stream.subarray(at, nl).toString();
    parts.push({ kind: 'line', start: at, end: nl + 1, text });
    at = nl + 1;
    const list = /^OK list (\d+) /.exec(text);
    const download = /^OK (\d+) [0-9a-f]{64}(?: from (\d+))?$/.exec(text);
    const bodyBytes = list ? Number(list[1]) : download ? Number(download[1]) - Number(download[2] ?? 0) : 0;
    if (bodyBytes > 0) {
      parts.push({ kind: 'body', start: at, end: Math.min(at + bodyBytes, stream.length) });
      at += bodyBytes;
    }
  }
  return parts;
};

/** A file of a fake tree: what LIST says of it (size, digest) may differ from what DOWNLOAD sends. */
export interface FakeFile {
  readonly name: string;
  readonly data: Buffer;
  /** As listed; the data's own by default. */
  readonly listedSize?: number;
  readonly listedDigest?: string;
}

export interface TreeServer {
  readonly port: number;
  /** Every request's command line and name, in order ("DOWNLOAD a/b", "LIST PAGED a"). */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * What the fake server does with the `n`-th DOWNLOAD (0-based) of `name`: 'serve' (its data, true),
 * or write anything itself to `socket` and return 'handled'.
 */
export type DownloadScript = (name: string, socket: Socket, n: number, file: FakeFile | undefined) => 'serve' | 'handled';

export const downloadAnswer = (data: Buffer, digest = sha256(data), size = data.length): Buffer => Buffer.concat([Buffer.from(`OK ${size} ${digest}\n`), data]);

/**
 * A fake rxfer server (list=paged) with `files`, listed `pageSize` at a time in byte order. DOWNLOAD
 * answers follow `script`. It answers requests as they come (pipelined, in order).
 */
export const treeServer = async (files: readonly FakeFile[], script: DownloadScript = () => 'serve', pageSize = 100_000): Promise<TreeServer> => {
  const requests: string[] = [];
  const byName = new Map(files.map((file) => [file.name, file]));
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  let downloads = 0;
  const listPage = (after: string | undefined): string => {
    const from = after === undefined ? 0 : sorted.findIndex((f) => Buffer.compare(Buffer.from(f.name), Buffer.from(after)) > 0);
    const start = from === -1 ? sorted.length : from;
    const page = sorted.slice(start, start + pageSize);
    const more = start + pageSize < sorted.length;
    const body = page.map((f) => formatListingLine({ name: f.name, size: f.listedSize ?? f.data.length, digest: f.listedDigest ?? sha256(f.data), mtimeMs: 0 })).join('');
    return `OK list ${Buffer.byteLength(body)} ${page.length}${more ? ' more' : ''}\n${body}`;
  };
  // The framing, greeting and QUIT are fakePagingServer's; this answers LIST pages and DOWNLOADs.
  const server = await fakePagingServer(() => ({ verb, args }, socket) => {
    const name = args[0]!;
    requests.push(`${verb} ${name}`);
    if (verb.startsWith('LIST')) socket.write(listPage(verb.startsWith('LIST AFTER') ? args[1] : undefined));
    else if (verb.startsWith('DOWNLOAD')) {
      const file = byName.get(name);
      const n = downloads++;
      if (script(name, socket, n, file) === 'serve') {
        if (file) socket.write(downloadAnswer(file.data));
        else socket.write(`NOT FOUND ${name} does not exist\n`);
      }
    } else socket.write('ERR BAD_COMMAND not in this test\n');
  });
  return { port: server.port, requests, close: server.close };
};
