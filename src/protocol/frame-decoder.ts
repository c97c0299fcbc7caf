import { RxferError } from '../errors/rxfer-error';
import { BatchEntry, Command, carriesData, nameLines, owedBytes, parseBatchEntry, parseCommand, parseTrailer } from './command';
import { BATCH_LIMITS } from './protocol-limits';
import { Frame } from './frame';

/**
 * FAILED (the stream cannot be followed) and CLOSED (the peer said QUIT) are final: nothing after
 * them may become a request, so the rest of the input is read and discarded, never decoded.
 */
type State = 'COMMAND' | 'NAME' | 'DATA' | 'TRAILER' | 'ENTRY' | 'BATCH_NAME' | 'BATCH_DATA' | 'FAILED' | 'CLOSED';

/** The BATCH being read: files still to come, the room left in its byte limit, the file being filled. */
interface BatchInProgress {
  filesLeft: number;
  bytesLeft: number;
  entry?: BatchEntry;
  raw?: Buffer;
  bytes?: Buffer;
  filled: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Protocol v1 as an explicit state machine over bytes (after `ws`'s Receiver): lines in COMMAND, NAME
 * and TRAILER, a counted data block in DATA. Bytes are carried across `push` calls, so a frame may be
 * split anywhere. Data chunks are zero-copy views of the input.
 */
export class FrameDecoder {
  private state: State = 'COMMAND';
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dataLeft = 0;
  private command: Command | undefined;
  private namesLeft = 0;
  private batch: BatchInProgress | undefined;

  constructor(private readonly maxLineBytes: number) {}

  /**
   * True while a frame has started but not finished: the peer owes us more bytes. Never once the
   * input is over (FAILED, CLOSED): what trickles in then is discarded, and the session is only
   * waiting to answer the requests before it, which the stall guard must not cut short.
   */
  get midFrame(): boolean {
    if (this.ended) return false;
    return this.state !== 'COMMAND' || this.pendingBytes > 0;
  }

  /** No more frames will come: a protocol error or QUIT ended the input. */
  get ended(): boolean {
    return this.state === 'FAILED' || this.state === 'CLOSED';
  }

  push(input: Buffer): Frame[] {
    const frames: Frame[] = [];
    let offset = 0;
    while (offset < input.length && !this.ended) {
      offset =
        this.state === 'DATA' ? this.takeData(input, offset, frames) : this.state === 'BATCH_DATA' ? this.takeBatchData(input, offset, frames) : this.takeLine(input, offset, frames);
    }
    return frames;
  }

  private takeData(input: Buffer, offset: number, frames: Frame[]): number {
    const take = Math.min(this.dataLeft, input.length - offset);
    frames.push({ type: 'chunk', bytes: input.subarray(offset, offset + take) });
    this.dataLeft -= take;
    if (this.dataLeft === 0) this.state = 'TRAILER';
    return offset + take;
  }

  /** A BATCH file's bytes are copied into one buffer: the file goes on as one frame once it is whole. */
  private takeBatchData(input: Buffer, offset: number, frames: Frame[]): number {
    const batch = this.batch!;
    const file = batch.bytes!;
    const take = Math.min(file.length - batch.filled, input.length - offset);
    input.copy(file, batch.filled, offset, offset + take);
    batch.filled += take;
    if (batch.filled === file.length) this.endBatchFile(frames);
    return offset + take;
  }

  private endBatchFile(frames: Frame[]): void {
    const batch = this.batch!;
    frames.push({ type: 'fileInBatch', ...batch.entry!, raw: batch.raw!, bytes: batch.bytes! });
    batch.entry = batch.raw = batch.bytes = undefined;
    batch.filled = 0;
    if (--batch.filesLeft > 0) {
      this.state = 'ENTRY';
      return;
    }
    this.batch = undefined;
    this.state = 'COMMAND';
  }

  private takeLine(input: Buffer, offset: number, frames: Frame[]): number {
    const newline = input.indexOf(NEWLINE, offset);
    const end = newline === -1 ? input.length : newline;
    const lineBytes = this.pendingBytes + (end - offset) + (newline === -1 ? 0 : 1);
    if (lineBytes > this.maxLineBytes) {
      // Count before resetting anything, so the message carries the real number (NestJS #15472).
      const seen = lineBytes;
      this.fail(frames, new RxferError('LINE_TOO_LONG', `line longer than ${this.maxLineBytes} bytes (at least ${seen} seen)`, { limit: this.maxLineBytes, seen }));
      return input.length;
    }
    if (newline === -1) {
      this.pending.push(input.subarray(offset));
      this.pendingBytes += input.length - offset;
      return input.length;
    }
    let line = this.pendingBytes === 0 ? input.subarray(offset, newline) : Buffer.concat([...this.pending, input.subarray(offset, newline)]);
    this.pending = [];
    this.pendingBytes = 0;
    if (line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN) line = line.subarray(0, line.length - 1);
    this.onLine(line, frames);
    return newline + 1;
  }

  private onLine(line: Buffer, frames: Frame[]): void {
    try {
      switch (this.state) {
        case 'COMMAND': {
          const command = parseCommand(line.toString('utf8'));
          frames.push({ type: 'command', command });
          this.command = command;
          this.namesLeft = nameLines(command);
          if (command.verb === 'BATCH') this.batch = { filesLeft: command.count, bytesLeft: BATCH_LIMITS.bytes, filled: 0 };
          this.state = command.verb === 'QUIT' ? 'CLOSED' : command.verb === 'BATCH' ? 'ENTRY' : this.namesLeft > 0 ? 'NAME' : 'COMMAND';
          return;
        }
        case 'ENTRY': {
          const batch = this.batch!;
          const entry = parseBatchEntry(line.toString('latin1'));
          if (entry.size > batch.bytesLeft) {
            throw new RxferError('BAD_COMMAND', `a BATCH holds at most ${BATCH_LIMITS.bytes} bytes of files (greeting batch-bytes); this file of ${entry.size} bytes does not fit in the ${batch.bytesLeft} left`, { limit: BATCH_LIMITS.bytes });
          }
          batch.bytesLeft -= entry.size;
          batch.entry = entry;
          this.state = 'BATCH_NAME';
          return;
        }
        case 'BATCH_NAME': {
          const batch = this.batch!;
          batch.raw = Buffer.from(line);
          // Not zeroed: every byte is written before the frame leaves (takeBatchData).
          batch.bytes = Buffer.allocUnsafe(batch.entry!.size);
          if (batch.entry!.size === 0) this.endBatchFile(frames);
          else this.state = 'BATCH_DATA';
          return;
        }
        case 'NAME': {
          // Copy: a name outlives the input buffer it came in.
          frames.push({ type: 'name', raw: Buffer.from(line) });
          const command = this.command!;
          if (--this.namesLeft > 0) return;
          if (carriesData(command)) {
            this.dataLeft = owedBytes(command);
            this.state = this.dataLeft > 0 ? 'DATA' : 'TRAILER';
          } else {
            this.state = 'COMMAND';
          }
          return;
        }
        case 'TRAILER':
          frames.push({ type: 'trailer', trailer: parseTrailer(line.toString('latin1')) });
          this.state = 'COMMAND';
          return;
      }
    } catch (err) {
      this.fail(frames, err as RxferError);
    }
  }

  private fail(frames: Frame[], error: RxferError): void {
    frames.push({ type: 'protocolError', error });
    this.state = 'FAILED';
    this.batch = undefined;
    this.pending = [];
    this.pendingBytes = 0;
  }
}
