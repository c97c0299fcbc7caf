import type { Duplex, Writable } from 'node:stream';
import { RxferError } from '../errors/rxfer-error';
import { noteTransientBytes } from '../io/transient-buffers';
import { WriteWindow } from '../io/write-window';
import { ChunkQueue } from './chunk-queue';
/**
 * Bytes the reader keeps while nobody is reading (a download body arriving while the caller is still
 * opening its staging file, say). Beyond this the socket is paused, so memory stays bounded.
 */
const IDLE_BUFFER_LIMIT = 1024 * 1024;

export interface BodyReadOptions {
  /** Sees every chunk handed to the sink, in order (hashing, counting, progress). */
  readonly onChunk?: (chunk: Buffer) => void;
}

type PendingRead =
  | {
      readonly kind: 'LINE';
      readonly maxBytes: number;
      readonly resolve: (line: string) => void;
      readonly reject: (err: unknown) => void;
    }
  | {
      readonly kind: 'BODY';
      remaining: number;
      /** Held until the sink has room again (see WriteWindow). */
      waitingRoom: boolean;
      /** None for a body the reader keeps in memory (readBodyInMemory): onChunk is all. */
      readonly window: WriteWindow | undefined;
      readonly options: BodyReadOptions;
      readonly resolve: () => void;
      readonly reject: (err: unknown) => void;
      readonly detach: () => void;
    };

const lost = (message: string): RxferError => new RxferError('CONNECTION_LOST', message);

/**
 * Reads the server's byte stream as a sequence of lines and sized bodies. It is a state machine over
 * buffered chunks (idle, reading a line, reading a body) with leftovers carried forward, and it holds
 * the socket's only `data` listener for the socket's whole life: handing over from one read to the
 * next never re-subscribes, so no bytes fall between two readers.
 */
export class ReplyReader {
  private readonly queue = new ChunkQueue();
  private pending: PendingRead | undefined;
  private ended: RxferError | undefined;
  private paused = false;

  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.pump();
      noteTransientBytes(chunk.length);
    });
    socket.on('end', () => this.end(lost('the server closed the connection')));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.end(err instanceof RxferError ? err : lost(`connection error: ${err.code ?? err.message}`)),
    );
    socket.on('close', () => this.end(lost('the connection was closed')));
  }

  /** The next line, without its `\n` (and a `\r` before it). `maxBytes` counts the `\n`. */
  readLine(maxBytes: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.begin({ kind: 'LINE', maxBytes, resolve, reject });
    });
  }

  /**
   * Hands exactly `size` bytes to `sink`, pausing the socket while the sink has too much to write
   * (see WriteWindow). Resolves once the last byte was written to the sink (not flushed).
   */
  readBody(size: number, sink: Writable, options: BodyReadOptions = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      const onSinkFailure = (err?: unknown) => this.failBody(err ?? new Error('the sink closed before the body ended'));
      const window = new WriteWindow(sink);
      const detach = () => {
        sink.removeListener('error', onSinkFailure);
        sink.removeListener('close', onSinkFailure);
        window.release();
      };
      sink.on('error', onSinkFailure);
      sink.on('close', onSinkFailure);
      this.begin({ kind: 'BODY', remaining: size, waitingRoom: false, window, options, resolve, reject, detach });
    });
  }

  /**
   * Hands exactly `size` bytes to `onChunk` alone: for a body its reader keeps in memory (a LIST page,
   * a small download), bounded by the size it checked. No sink, so no write window and no waiting for
   * room: a Writable and a WriteWindow per file, with their listeners, were ≈ 8 % of the client's CPU
   * for `get -r` of 2,000 small files (bench/findings.md).
   */
  readBodyInMemory(size: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.begin({ kind: 'BODY', remaining: size, waitingRoom: false, window: undefined, options: { onChunk }, resolve, reject, detach: () => undefined });
    });
  }

  private begin(read: PendingRead): void {
    if (this.pending) {
      read.reject(new RxferError('INTERNAL', 'a read was started while another one was in progress'));
      return;
    }
    this.pending = read;
    this.pump();
  }

  private end(reason: RxferError): void {
    this.ended ??= reason;
    this.pump();
  }

  private failBody(err: unknown): void {
    const read = this.pending;
    if (read?.kind !== 'BODY') return;
    read.detach();
    this.pending = undefined;
    read.reject(err);
    this.updateFlow();
  }

  /** Serves the pending read from the buffer as far as it can, then decides whether data may flow. */
  private pump(): void {
    const read = this.pending;
    if (read?.kind === 'LINE') this.pumpLine(read);
    else if (read?.kind === 'BODY') this.pumpBody(read);
    this.updateFlow();
  }

  private pumpLine(read: Extract<PendingRead, { kind: 'LINE' }>): void {
    const length = this.queue.lineLength();
    if (length > 0 && length <= read.maxBytes) {
      const line = this.queue.consume(length).toString('utf8', 0, length - 1);
      this.pending = undefined;
      read.resolve(line.endsWith('\r') ? line.slice(0, -1) : line);
    } else if (length > read.maxBytes || this.queue.length >= read.maxBytes) {
      this.pending = undefined;
      const message = `the server sent a line longer than ${read.maxBytes} bytes`;
      read.reject(new RxferError('PROTOCOL_VIOLATION', message, { maxBytes: read.maxBytes }));
    } else if (this.ended) {
      this.pending = undefined;
      read.reject(this.ended);
    }
  }

  private pumpBody(read: Extract<PendingRead, { kind: 'BODY' }>): void {
    while (read.remaining > 0 && !read.waitingRoom && this.queue.length > 0) {
      const piece = this.queue.takeFront(read.remaining);
      read.remaining -= piece.length;
      try {
        read.options.onChunk?.(piece);
        if (read.window !== undefined && !read.window.write(piece)) {
          read.waitingRoom = true;
          read.window.onRoom(() => {
            read.waitingRoom = false;
            if (this.pending === read) this.pump();
          });
        }
      } catch (err) {
        this.failBody(err);
        return;
      }
    }
    if (read.remaining === 0) {
      read.detach();
      this.pending = undefined;
      read.resolve();
    } else if (this.ended) {
      read.detach();
      this.pending = undefined;
      read.reject(this.ended);
    }
  }

  private updateFlow(): void {
    const read = this.pending;
    const hold = read === undefined ? this.queue.length >= IDLE_BUFFER_LIMIT : read.kind === 'BODY' && read.waitingRoom;
    if (hold && !this.paused && !this.ended) {
      this.paused = true;
      this.socket.pause();
    } else if (!hold && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }
}
