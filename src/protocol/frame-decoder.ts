import { RxferError } from '../errors/rxfer-error';
import { Command, carriesData, nameLines, owedBytes, parseCommand, parseTrailer } from './command';
import { Frame } from './frame';

/**
 * FAILED (the stream cannot be followed) and CLOSED (the peer said QUIT) are final: nothing after
 * them may become a request, so the rest of the input is read and discarded, never decoded.
 */
type State = 'COMMAND' | 'NAME' | 'DATA' | 'TRAILER' | 'FAILED' | 'CLOSED';

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
      offset = this.state === 'DATA' ? this.takeData(input, offset, frames) : this.takeLine(input, offset, frames);
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
          this.state = command.verb === 'QUIT' ? 'CLOSED' : this.namesLeft > 0 ? 'NAME' : 'COMMAND';
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
    this.pending = [];
    this.pendingBytes = 0;
  }
}
