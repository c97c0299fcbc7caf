import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { Observable } from 'rxjs';
import { RxferError } from '../errors/rxfer-error';
import { noteTransientBytes, transientTransferStarted } from '../io/transient-buffers';
import { FlowControl } from './flow-control';
import { InMemoryBody } from '../io/in-memory-body';
import { StallLimits, watchOutputStalls } from './stall-guard';

/** Bytes a finished body may leave in the socket's buffer before the next reply may go. */
const MAX_BACKLOG_BYTES = 256 * 1024;

/**
 * Streams exactly `size` bytes from `stream` into the socket, pausing the file when the socket's
 * buffer is full (a peer that stops reading costs no memory), and completing once the socket has
 * (nearly) taken the last of them, or erroring once the socket is gone. While it runs, no new
 * requests are read: they would pile up behind it. A short or failed stream breaks the framing, so
 * it errors and the actor closes the connection.
 */
export const sendBody = (
  socket: Socket,
  flow: FlowControl,
  body: { stream: Readable; size: number },
  limits: StallLimits,
  /** Told of each chunk as it is handed to the socket (metrics count file data as it moves). */
  onSent?: (bytes: number) => void,
): Observable<void> =>
  body.stream instanceof InMemoryBody && body.stream.whole.length === body.size
    ? sendWhole(socket, flow, body.stream.whole, limits, onSent)
    : sendStream(socket, flow, body, limits, onSent);

const sendStream = (socket: Socket, flow: FlowControl, body: { stream: Readable; size: number }, limits: StallLimits, onSent?: (bytes: number) => void): Observable<void> =>
  new Observable<void>((subscriber) => {
    const { stream, size } = body;
    const release = flow.hold();
    const stopMoving = transientTransferStarted();
    const stopWatching = watchOutputStalls(limits, () => socket.bytesWritten, (error) => subscriber.error(error));
    let sent = 0;
    const resume = () => stream.resume();
    const onData = (chunk: Buffer) => {
      sent += chunk.length;
      onSent?.(chunk.length);
      if (!socket.write(chunk)) {
        stream.pause();
        socket.once('drain', resume);
      }
      noteTransientBytes(chunk.length);
    };
    const complete = () => subscriber.complete();
    const onEnd = () => {
      // Done once the socket has (nearly) taken the bytes: a small file is one chunk, and ending on
      // the write that found the socket full would let a peer that never reads have every small
      // file it asks for read into our memory, one after the other (issue 16). A little backlog is
      // allowed, so that pipelined small files still leave many to a segment.
      if (sent === size) {
        if (socket.writableNeedDrain && socket.writableLength > MAX_BACKLOG_BYTES) socket.once('drain', complete);
        else complete();
      } else subscriber.error(new RxferError('STORAGE_FAILED', `file changed while it was sent: ${sent} of ${size} bytes`, { sent, size }));
    };
    const onError = (err: Error) => subscriber.error(new RxferError('STORAGE_FAILED', `reading the file failed: ${err.message}`));
    // A peer that is gone never drains: without this the send (and the file, the slot and every
    // reply queued behind it) would wait for the stall guard, or for ever once input has ended.
    const onClose = () => subscriber.error(connectionClosed());
    if (socket.destroyed) queueMicrotask(onClose);
    else socket.once('close', onClose);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    return () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      socket.off('close', onClose);
      socket.off('drain', resume);
      socket.off('drain', complete);
      stream.destroy();
      stopWatching();
      stopMoving();
      release();
    };
  });

/**
 * sendBody for a body already in memory (a small file): one write, and done at once unless that
 * write left more than MAX_BACKLOG_BYTES queued, in which case input is held (and stalls watched)
 * until the socket drains, exactly as when a stream's last chunk found the socket full. The stream
 * path's per-file pause/resume of the file, its listeners and its stall timer cost more than the
 * write itself for a 4 KiB file (bench/findings.md, issue 20).
 */
const sendWhole = (socket: Socket, flow: FlowControl, whole: Buffer, limits: StallLimits, onSent?: (bytes: number) => void): Observable<void> =>
  new Observable<void>((subscriber) => {
    if (socket.destroyed) {
      subscriber.error(connectionClosed());
      return;
    }
    if (whole.length > 0) {
      onSent?.(whole.length);
      socket.write(whole);
      noteTransientBytes(whole.length);
    }
    if (!(socket.writableNeedDrain && socket.writableLength > MAX_BACKLOG_BYTES)) {
      subscriber.complete();
      return;
    }
    const release = flow.hold();
    const stopWatching = watchOutputStalls(limits, () => socket.bytesWritten, (error) => subscriber.error(error));
    const complete = () => subscriber.complete();
    const onClose = () => subscriber.error(connectionClosed());
    socket.once('drain', complete);
    socket.once('close', onClose);
    return () => {
      socket.off('drain', complete);
      socket.off('close', onClose);
      stopWatching();
      release();
    };
  });

/** A send cut off by the peer going away: ECONNRESET, which the actor counts as a lost peer, not a failure of ours. */
const connectionClosed = () => Object.assign(new Error('the connection closed while data was being sent'), { code: 'ECONNRESET' });
