import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { RxferError } from '../errors/rxfer-error';
import { DEFAULT_HASH, HashAlgorithm } from '../integrity/hash-algorithm';
import { Reply, parseReply } from '../protocol/reply';
import { BodyReadOptions, ReplyReader } from './reply-reader';

/**
 * Reply lines are short, but a server may add capabilities or longer messages in later versions: be
 * generous while still bounding what one line can make us hold.
 */
const MAX_REPLY_LINE_BYTES = 64 * 1024;

/**
 * One socket with its reader, and the rules every request follows on it: writes wait for `drain`
 * when `write()` says so, and any doubt about where the byte stream stands ends the connection.
 */
export class Connection {
  private readonly reader: ReplyReader;
  private closedReason: RxferError | undefined;
  /** Set by `abandon`: the stream is out of step, and nothing more is read. */
  private abandoned = false;
  /** The algorithm of every digest on this connection: chosen once, right after the greeting. */
  hash: HashAlgorithm = DEFAULT_HASH;

  constructor(readonly socket: Socket) {
    this.reader = new ReplyReader(socket);
    socket.once('close', () => {
      this.closedReason ??= new RxferError('CONNECTION_LOST', 'the connection was closed');
    });
    // The server's FIN: it will answer nothing more (what it sent is still read). Closed from now
    // on, not only at 'close', which comes later: the tree code asks isClosed to tell which files
    // the loss took, and a bare "the server closed the connection" told none of them.
    socket.once('end', () => {
      this.closedReason ??= new RxferError('CONNECTION_LOST', 'the server closed the connection');
    });
  }

  get isClosed(): boolean {
    return this.closedReason !== undefined || this.socket.destroyed;
  }

  /** Writes and resolves once the socket will take more (at once, or after `drain`). */
  send(data: Buffer | string): Promise<void> {
    if (this.isClosed) return Promise.reject(this.closedError());
    if (this.socket.write(data)) return Promise.resolve();
    return this.drained();
  }

  /**
   * Writes `parts` as one request, without copying them into one buffer first: corked, so that they
   * leave in one writev. (A BATCH of 64 × 4 KiB concatenated was a fresh 256 KiB buffer and a copy per
   * batch; gone, it changed no whole command measurably: bench/findings.md.) The caller must not
   * change or reuse a part until the server has confirmed it: until then the socket may hold it.
   */
  sendAll(parts: readonly Buffer[]): Promise<void> {
    if (this.isClosed) return Promise.reject(this.closedError());
    this.socket.cork();
    let room = true;
    for (const part of parts) room = this.socket.write(part);
    this.socket.uncork();
    return room ? Promise.resolve() : this.drained();
  }

  /** Resolves on `drain`; rejects if the connection closes first, so a dead peer never hangs us. */
  drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.removeListener('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.removeListener('drain', onDrain);
        reject(this.closedError());
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }

  /** The next reply. A line outside the protocol means we no longer know where we stand: close. */
  async readReply(): Promise<Reply> {
    if (this.abandoned) throw this.closedError();
    const line = await this.reader.readLine(MAX_REPLY_LINE_BYTES);
    try {
      return parseReply(line);
    } catch (err) {
      this.abandon(err instanceof RxferError ? err : undefined);
      throw err;
    }
  }

  readBody(size: number, sink: Writable, options?: BodyReadOptions): Promise<void> {
    if (this.abandoned) return Promise.reject(this.closedError());
    if (sink.destroyed || sink.writableEnded) return Promise.reject(new Error('the sink is already closed'));
    return this.reader.readBody(size, sink, options);
  }

  /** A body kept in memory by its reader: every byte to `onChunk`, in order (ReplyReader.readBodyInMemory). */
  readBodyInMemory(size: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    if (this.abandoned) return Promise.reject(this.closedError());
    return this.reader.readBodyInMemory(size, onChunk);
  }

  /**
   * After a write failed because the connection went away, the server may have said why just before
   * closing (`ERR SHUTTING_DOWN`, `ERR IDLE_TIMEOUT`): prefer its reason to a bare CONNECTION_LOST.
   * Waits for the request's turn to read, so that replies owed to earlier requests still reach them.
   */
  async explainLoss(err: unknown, receiveTurn: Promise<void>): Promise<never> {
    await receiveTurn;
    // This request's own replies may come before the reason, if any, which is the last line.
    for (let line = 0; line < 4; line++) {
      const reply = await this.readReply().catch(() => undefined);
      if (reply === undefined) break;
      if (reply.kind === 'error') throw new RxferError(reply.code, reply.message);
    }
    throw err;
  }

  /**
   * Ends the connection because the byte stream is (or would be) out of step with the server. Nothing
   * more is read from it, not even what is already buffered: after a reply out of step, the bytes
   * behind it are another file's (hostile pass o: the downloads queued behind committed their
   * predecessors' bytes, each verified against the digest announced for them). A server's FIN is not
   * this: the replies it sent before it are still read.
   */
  abandon(reason?: RxferError): void {
    this.closedReason ??= reason ?? new RxferError('CONNECTION_LOST', 'the connection was closed');
    this.abandoned = true;
    this.socket.destroy();
  }

  closedError(): RxferError {
    const reason = this.closedReason;
    if (reason?.code === 'CONNECTION_LOST') return reason;
    const after = reason ? ` after ${reason.code}` : '';
    return new RxferError('CONNECTION_LOST', `the connection is closed${after}`);
  }

  /** Half-closes our side and resolves once the socket is fully closed. */
  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}
