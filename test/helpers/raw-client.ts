import { createHash } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { SocketInbox } from './socket-inbox';

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Failure guard for every wait; generous because a loaded CI box is slow, never a timing assertion. */
const DEFAULT_TIMEOUT_MS = 5000;

/** The bytes of one UPLOAD/ADDFILE request: header, data and trailer (with the right digest unless given). */
export const uploadRequest = (name: string | Buffer, data: Buffer | string, options: { verb?: 'UPLOAD' | 'ADDFILE'; sha256?: string } = {}): Buffer => {
  const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return Buffer.concat([
    Buffer.from(`${options.verb ?? 'UPLOAD'} ${body.length}\n`),
    Buffer.isBuffer(name) ? name : Buffer.from(name),
    Buffer.from('\n'),
    body,
    Buffer.from(`SHA256 ${options.sha256 ?? sha256(body)}\n`),
  ]);
};

/** One file of a BATCH as the test wants it sent: a wrong `sha256` or `entry` line makes a bad one. */
export interface BatchFile {
  readonly name: string | Buffer;
  readonly data: Buffer | string;
  readonly sha256?: string;
  /** The whole entry line, without its `\n`, in place of `<size> SHA256 <digest>`. */
  readonly entry?: string;
}

/** The bytes of one BATCH request: `BATCH <count>`, then each file's entry line, name line and bytes. */
export const batchRequest = (files: readonly BatchFile[], count = files.length): Buffer =>
  Buffer.concat([
    Buffer.from(`BATCH ${count}\n`),
    ...files.flatMap(({ name, data, sha256: digest, entry }) => {
      const body = Buffer.isBuffer(data) ? data : Buffer.from(data);
      return [Buffer.from(`${entry ?? `${body.length} SHA256 ${digest ?? sha256(body)}`}\n`), Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.from('\n'), body];
    }),
  ]);

export const downloadRequest = (name: string | Buffer): Buffer =>
  Buffer.concat([Buffer.from('DOWNLOAD\n'), Buffer.isBuffer(name) ? name : Buffer.from(name), Buffer.from('\n')]);

/** What a reply is read from: a RawClient, or any other test peer given the same two reads. */
export interface ReplySource {
  readLine(timeoutMs?: number): Promise<string>;
  readBytes(count: number, timeoutMs?: number): Promise<Buffer>;
}

/** A ReplySource from a peer whose two reads are named `line` and `bytes` (the Wire of test/security/support). */
export const replySource = (peer: { line(timeoutMs?: number): Promise<string>; bytes(count: number, timeoutMs?: number): Promise<Buffer> }): ReplySource => ({
  readLine: (timeoutMs) => peer.line(timeoutMs),
  readBytes: (count, timeoutMs) => peer.bytes(count, timeoutMs),
});

/** The words of a LIST request (docs/PROTOCOL.md, LIST), and LIST AFTER's cursor. */
export interface ListOptions {
  /** LIST PAGED: the answer may end in `more`. */
  readonly paged?: boolean;
  /** LIST AFTER: strictly after this name (a folder's with its slash); a page, as PAGED. */
  readonly after?: string;
  readonly folders?: boolean;
  readonly shallow?: boolean;
}

/** The bytes of one LIST request: `LIST [PAGED|AFTER] [FOLDERS] [SHALLOW]`, the folder ('' for all), AFTER's cursor. */
export const listRequest = (folder: string, options: ListOptions = {}): Buffer => {
  const after = options.after !== undefined;
  const words = [after ? ' AFTER' : options.paged ? ' PAGED' : '', options.folders ? ' FOLDERS' : '', options.shallow ? ' SHALLOW' : ''];
  return Buffer.from(`LIST${words.join('')}\n${folder}\n${after ? `${options.after}\n` : ''}`);
};

/** A file line of a LIST answer, `<size> <digest or -> <mtime ms> <name>`; `digest` as sent, `-` where none is given. */
export interface ListedFile {
  readonly kind: 'file';
  readonly name: string;
  readonly size: number;
  readonly digest: string;
  readonly mtimeMs: number;
}

/** A folder line (LIST FOLDERS only), `- - <mtime ms> <name>/`; `name` keeps its slash, as LIST AFTER wants it. */
export interface ListedFolder {
  readonly kind: 'folder';
  readonly name: string;
  readonly mtimeMs: number;
}

export type ListedEntry = ListedFile | ListedFolder;

/** One whole LIST answer, every line of it understood. */
export interface ListAnswer {
  readonly header: string;
  readonly count: number;
  /** A page with more after it (LIST PAGED / AFTER only). */
  readonly more: boolean;
  /** The listing lines as sent, for a test about the bytes themselves. */
  readonly body: Buffer;
  readonly entries: readonly ListedEntry[];
  /** The file lines alone: all of them unless FOLDERS was asked. */
  readonly files: readonly ListedFile[];
}

/** Numbers on the wire: decimal, no sign, no leading zeros (docs/PROTOCOL.md, Framing). */
const NUMBER = '(0|[1-9][0-9]*)';
const LIST_HEADER = new RegExp(`^OK list ${NUMBER} ${NUMBER}( more)?$`);
/** The name runs to the end of the line; a file's never ends in `/`, a folder's always does. */
const FILE_LINE = new RegExp(`^${NUMBER} ([0-9a-f]{64}|-) ${NUMBER} ([^\n]*[^\n/])$`);
const FOLDER_LINE = new RegExp(`^- - ${NUMBER} ([^\n]*[^\n/]/)$`);

const wireNumber = (text: string, line: string): number => {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`LIST: a number past 2^53 in ${JSON.stringify(line)}`);
  return value;
};

/**
 * A LIST answer's first line, `OK list <bytes> <count>[ more]`; undefined for any other reply (an ERR),
 * so a test can tell them apart. A malformed `OK list` line throws.
 */
export const parseListHeader = (line: string): { bytes: number; count: number; more: boolean } | undefined => {
  if (!line.startsWith('OK list')) return undefined;
  const match = LIST_HEADER.exec(line);
  if (!match) throw new Error(`LIST: header not understood: ${JSON.stringify(line)}`);
  return { bytes: wireNumber(match[1]!, line), count: wireNumber(match[2]!, line), more: match[3] !== undefined };
};

/**
 * The listing lines of a LIST answer, in order. Strict on purpose: a line this does not understand
 * (a folder line when FOLDERS was not asked, a lost newline, a bad digest) throws with the line, so
 * that no test can pass by skipping what the server should not have sent.
 */
export const parseListing = (body: Buffer, options: Pick<ListOptions, 'folders'> = {}): ListedEntry[] => {
  const text = body.toString('utf8');
  // Decoding would silently turn invalid bytes into U+FFFD, and a name into another one.
  if (!Buffer.from(text, 'utf8').equals(body)) throw new Error(`LIST: listing is not UTF-8: ${JSON.stringify(body.toString('latin1').slice(0, 200))}`);
  if (text === '') return [];
  if (!text.endsWith('\n')) throw new Error(`LIST: listing does not end with a newline: ${JSON.stringify(text.slice(-200))}`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line): ListedEntry => {
      const file = FILE_LINE.exec(line);
      if (file) return { kind: 'file', name: file[4]!, size: wireNumber(file[1]!, line), digest: file[2]!, mtimeMs: wireNumber(file[3]!, line) };
      const folder = options.folders ? FOLDER_LINE.exec(line) : null;
      if (folder) return { kind: 'folder', name: folder[2]!, mtimeMs: wireNumber(folder[1]!, line) };
      throw new Error(`LIST: line not understood${options.folders ? '' : ' (FOLDERS not asked)'}: ${JSON.stringify(line)}`);
    });
};

/**
 * Reads one whole LIST answer (its header unless given, when the test read it first) and checks it:
 * an OK list header, `more` only on a page, as many lines as it counts. Anything else throws.
 */
export const readListAnswer = async (source: ReplySource, options: ListOptions & { header?: string; timeoutMs?: number } = {}): Promise<ListAnswer> => {
  const header = options.header ?? (await source.readLine(options.timeoutMs));
  const head = parseListHeader(header);
  if (!head) throw new Error(`LIST answered ${JSON.stringify(header)}`);
  if (head.more && !options.paged && options.after === undefined) throw new Error(`LIST: a LIST not paged answered ${JSON.stringify(header)}`);
  const body = await source.readBytes(head.bytes, options.timeoutMs);
  const entries = parseListing(body, options);
  if (entries.length !== head.count) throw new Error(`LIST: ${JSON.stringify(header)} but ${entries.length} lines`);
  return { header, count: head.count, more: head.more, body, entries, files: entries.filter((entry): entry is ListedFile => entry.kind === 'file') };
};

/**
 * A protocol-level client over a plain socket: it sends whatever it is told (malformed or not) and
 * reads the server's bytes back as lines or exact counts (see SocketInbox).
 */
export class RawClient {
  private readonly inbox: SocketInbox;

  private constructor(readonly socket: Socket) {
    this.inbox = new SocketInbox(socket);
  }

  /**
   * Connects to 127.0.0.1:`port`; unless told otherwise, reads the greeting line (`greeting`). Our
   * side ends when the server's does (no half-open), as `nc` does.
   */
  static async connect(port: number, options: { readGreeting?: boolean; allowHalfOpen?: boolean } = {}): Promise<RawClient & { greeting: string }> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
    const client = new RawClient(socket) as RawClient & { greeting: string };
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    client.greeting = options.readGreeting === false ? '' : await client.readLine();
    return client;
  }

  /** The next line the server sent, without its `\n`. */
  readLine(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    return this.inbox.line(timeoutMs);
  }

  /** The next `count` lines. */
  async readLines(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(await this.readLine(timeoutMs));
    return lines;
  }

  /**
   * The outcome of an upload whose whole request was sent: its refusal, or (after `OK file recv`)
   * its final reply. Where the server refuses (at the header or at commit) is its choice.
   */
  async readUploadOutcome(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
    const first = await this.readLine(timeoutMs);
    return first === 'OK file recv' ? this.readLine(timeoutMs) : first;
  }

  /** Sends a LIST of `folder` ('' for everything) and reads its whole answer (readListAnswer). */
  async list(folder: string, options: ListOptions & { timeoutMs?: number } = {}): Promise<ListAnswer> {
    await this.send(listRequest(folder, options));
    return readListAnswer(this, options);
  }

  /** Exactly `count` bytes. */
  readBytes(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    return this.inbox.bytes(count, timeoutMs);
  }

  send(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Half-close: no more bytes from us, but we keep reading (`nc -N`). */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Waits until the server has closed the connection (its FIN, or a reset) and returns whatever it
   * sent that was not read yet.
   */
  waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
    return this.inbox.endOfInput(timeoutMs);
  }

  /** True once the server's side has ended (FIN) or the socket is gone. */
  get serverClosed(): boolean {
    return this.inbox.isEnded;
  }

  /** Bytes received and not read yet. */
  get unread(): Buffer {
    return this.inbox.unread;
  }
}

/** Destroys every client in the list, for afterEach. */
export const destroyAll = (clients: RawClient[]): void => {
  for (const client of clients.splice(0)) client.destroy();
};
