import { createHash } from 'node:crypto';
import { Subject, lastValueFrom, toArray } from 'rxjs';
import { RxferError } from '../../../src/errors/rxfer-error';
import { decodeFrames } from '../../../src/protocol/decode-frames';
import { Frame } from '../../../src/protocol/frame';
import { FrameDecoder } from '../../../src/protocol/frame-decoder';

/**
 * Each rule of the frame decoder (src/protocol/frame-decoder.ts, decode-frames.ts), a few small cases
 * each: the fast companion of frame-decoder.test.ts (which splits a sample session at every offset
 * and costs seconds per run), so that mutation testing can afford to run it for every mutant.
 */

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const trailer = (text: string) => `SHA256 ${sha(text)}\n`;

/** Feeds each piece to one decoder, as separate socket reads. */
const decode = (pieces: readonly string[], maxLine = 128): Frame[] => {
  const decoder = new FrameDecoder(maxLine);
  return pieces.flatMap((piece) => decoder.push(Buffer.from(piece)));
};

/** A readable form of frames: `command:VERB`, `name:text`, `chunk:text`, `trailer`, `error:CODE`. */
const shape = (frames: readonly Frame[]): string[] =>
  frames.map((frame) => {
    switch (frame.type) {
      case 'command':
        return `command:${frame.command.verb}`;
      case 'name':
        return `name:${frame.raw.toString('latin1')}`;
      case 'chunk':
        return `chunk:${frame.bytes.toString('latin1')}`;
      case 'trailer':
        return `trailer:${frame.trailer.digest.slice(0, 8)}`;
      case 'fileInBatch':
        return `fileInBatch:${frame.raw.toString('latin1')}=${frame.bytes.toString('latin1')}`;
      case 'protocolError':
        return `error:${frame.error.code}`;
    }
  });

const errorOf = (frames: readonly Frame[]): RxferError => {
  const last = frames[frames.length - 1];
  if (last?.type !== 'protocolError') throw new Error(`no protocolError in ${JSON.stringify(shape(frames))}`);
  expect(last.error).toBeInstanceOf(RxferError);
  return last.error;
};

describe('frames', () => {
  test('an upload: command, name, its data as one chunk, trailer; then the next request', () => {
    const frames = decode([`UPLOAD 3\nn\nabc${trailer('abc')}STAT\nx\n`]);
    expect(shape(frames)).toEqual(['command:UPLOAD', 'name:n', 'chunk:abc', `trailer:${sha('abc').slice(0, 8)}`, 'command:STAT', 'name:x']);
    expect(frames[0]).toEqual({ type: 'command', command: { verb: 'UPLOAD', size: 3 } });
    expect(frames[3]).toEqual({ type: 'trailer', trailer: { hash: 'sha256', digest: sha('abc') } });
  });

  test('data is counted, never read as lines: newlines and requests inside it are data', () => {
    const data = 'a\nQUIT\n';
    expect(shape(decode([`ADDFILE ${data.length}\nn\n${data}${trailer(data)}`]))).toEqual(['command:ADDFILE', 'name:n', `chunk:${data}`, `trailer:${sha(data).slice(0, 8)}`]);
  });

  test('data split over pushes comes as the pieces that arrived, each exactly its bytes', () => {
    const frames = decode(['UPLOAD 5\nn\nab', 'c', `de${trailer('abcde')}`]);
    expect(shape(frames)).toEqual(['command:UPLOAD', 'name:n', 'chunk:ab', 'chunk:c', 'chunk:de', `trailer:${sha('abcde').slice(0, 8)}`]);
  });

  test('an empty upload has no chunk at all: the trailer follows the name', () => {
    expect(shape(decode([`UPLOAD 0\nn\n${trailer('')}`]))).toEqual(['command:UPLOAD', 'name:n', `trailer:${sha('').slice(0, 8)}`]);
  });

  test('a resumed upload carries only the bytes after its offset', () => {
    const line = `UPLOAD 5 FROM 3 ${sha('abc')}\n`;
    const frames = decode([`${line}n\nde${trailer('abcde')}`]);
    expect(shape(frames)).toEqual(['command:UPLOAD', 'name:n', 'chunk:de', `trailer:${sha('abcde').slice(0, 8)}`]);
    expect(shape(decode([`UPLOAD 5 FROM 5 ${sha('abcde')}\nn\n${trailer('abcde')}`]))).toEqual(['command:UPLOAD', 'name:n', `trailer:${sha('abcde').slice(0, 8)}`]);
  });

  test('RENAME takes two name lines, STAT one, HASH and AUTH none', () => {
    expect(shape(decode(['RENAME\na\nb\nSTAT\nc\nHASH sha256\nAUTH u.s\nDELETE\nd\n']))).toEqual([
      'command:RENAME',
      'name:a',
      'name:b',
      'command:STAT',
      'name:c',
      'command:HASH',
      'command:AUTH',
      'command:DELETE',
      'name:d',
    ]);
  });

  test('a name is a copy: it outlives the buffer it came in', () => {
    const input = Buffer.from('STAT\nname\n');
    const frames = new FrameDecoder(128).push(input);
    input.fill(0);
    expect(frames[1]).toEqual({ type: 'name', raw: Buffer.from('name') });
  });

  test('a data chunk is a view of the input (no copy)', () => {
    const input = Buffer.from(`UPLOAD 3\nn\nabc${trailer('abc')}`);
    const chunk = new FrameDecoder(128).push(input)[2]!;
    expect(chunk.type === 'chunk' && chunk.bytes.buffer).toBe(input.buffer);
  });
});

describe('lines', () => {
  test('a line split over pushes, twice in a row, is joined', () => {
    expect(shape(decode(['ST', 'AT\nna', 'me\nDEL', 'ETE\n', 'x', '\n']))).toEqual(['command:STAT', 'name:name', 'command:DELETE', 'name:x']);
  });

  test('CRLF: one trailing CR is dropped, from a line split before its LF too', () => {
    expect(shape(decode(['STAT\r\na\r\r\n', 'STAT\r', '\nb\r', '\n']))).toEqual(['command:STAT', 'name:a\r', 'command:STAT', 'name:b']);
  });

  test('an empty name line is an empty name', () => {
    expect(decode(['STAT\n\n'])[1]).toEqual({ type: 'name', raw: Buffer.alloc(0) });
  });

  test('the command line is UTF-8 and the trailer line Latin-1 (bytes kept for the error)', () => {
    const frames = decode([`UPLOAD 1\nn\nxSHA256 ${'é'.repeat(64)}\n`], 4096);
    const error = errorOf(frames);
    expect(error.code).toBe('BAD_TRAILER');
    expect(error.message).toContain('Ã©');
  });
});

describe('the line limit', () => {
  test('a line of exactly the limit, newline included, passes; one byte more fails', () => {
    expect(shape(decode(['STAT\n', `${'n'.repeat(7)}\n`], 8))).toEqual(['command:STAT', 'name:nnnnnnn']);
    const error = errorOf(decode(['STAT\n', `${'n'.repeat(8)}\n`], 8));
    expect(error.code).toBe('LINE_TOO_LONG');
    expect(error.message).toBe('line longer than 8 bytes (at least 9 seen)');
    expect(error.detail).toEqual({ limit: 8, seen: 9 });
  });

  test('split over pushes, the bytes carried over count', () => {
    expect(shape(decode(['STAT\n', 'nnn', 'nnnn', '\n'], 8))).toEqual(['command:STAT', 'name:nnnnnnn']);
    const error = errorOf(decode(['STAT\n', 'nnnn', 'nnnn', '\n'], 8));
    expect(error.detail).toEqual({ limit: 8, seen: 9 });
  });

  test('without a newline yet: refused as soon as more than the limit is held', () => {
    const decoder = new FrameDecoder(8);
    expect(decoder.push(Buffer.from('nnnnnnnn'))).toEqual([]);
    expect(decoder.midFrame).toBe(true);
    const frames = decoder.push(Buffer.from('n'));
    expect(errorOf(frames).detail).toEqual({ limit: 8, seen: 9 });
    const first = new FrameDecoder(8).push(Buffer.from('STAT\nnnnnnnnnnn'));
    expect(errorOf(first).detail).toEqual({ limit: 8, seen: 10 });
  });

  test('counted from where the line starts in the push, not from the push’s start', () => {
    expect(shape(decode([`STAT\n${'n'.repeat(7)}\n`], 8))).toEqual(['command:STAT', 'name:nnnnnnn']);
    expect(shape(decode([`STAT\nnnnn`, `nnn\nSTAT\n`], 8))).toEqual(['command:STAT', 'name:nnnnnnn', 'command:STAT']);
  });

  test('data blocks are not lines: longer than the limit is fine', () => {
    const data = 'd'.repeat(100);
    expect(shape(decode([`UPLOAD 100\nn\n${data}`], 16))).toEqual(['command:UPLOAD', 'name:n', `chunk:${data}`]);
  });
});

describe('the end of the input', () => {
  test('after an error nothing more is decoded, in the same push or later', () => {
    const decoder = new FrameDecoder(128);
    const frames = decoder.push(Buffer.from('BOGUS\nSTAT\nx\n'));
    expect(shape(frames)).toEqual(['error:BAD_COMMAND']);
    expect(decoder.ended).toBe(true);
    expect(decoder.midFrame).toBe(false);
    expect(decoder.push(Buffer.from('STAT\nx\n'))).toEqual([]);
  });

  test('a bad trailer fails after the data', () => {
    expect(shape(decode(['UPLOAD 1\nn\nxSHA1 abc\nSTAT\nx\n']))).toEqual(['command:UPLOAD', 'name:n', 'chunk:x', 'error:BAD_TRAILER']);
  });

  test('a line too long ends the input too, and what was held is dropped', () => {
    const decoder = new FrameDecoder(8);
    decoder.push(Buffer.from('nnnn'));
    expect(shape(decoder.push(Buffer.from('nnnnn\nSTAT\nx\n')))).toEqual(['error:LINE_TOO_LONG']);
    expect(decoder.ended).toBe(true);
    expect(decoder.midFrame).toBe(false);
  });

  test('QUIT closes: nothing after it is decoded, and no frame is owed', () => {
    const decoder = new FrameDecoder(128);
    expect(shape(decoder.push(Buffer.from('QUIT\nSTAT\nx\nhalf')))).toEqual(['command:QUIT']);
    expect(decoder.ended).toBe(true);
    expect(decoder.midFrame).toBe(false);
    expect(decoder.push(Buffer.from('STAT\nx\n'))).toEqual([]);
  });
});

describe('midFrame', () => {
  test('true exactly while a frame has started and not finished', () => {
    const decoder = new FrameDecoder(128);
    expect(decoder.midFrame).toBe(false);
    expect(decoder.ended).toBe(false);
    decoder.push(Buffer.from('ST'));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from('AT\n'));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from('x\n'));
    expect(decoder.midFrame).toBe(false);
    decoder.push(Buffer.from('UPLOAD 2\nn\na'));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from('b'));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from(trailer('ab')));
    expect(decoder.midFrame).toBe(false);
    expect(decoder.ended).toBe(false);
  });
});

describe('decodeFrames', () => {
  const run = async (operator: ReturnType<typeof decodeFrames>, pieces: string[]): Promise<string[]> => {
    const bytes$ = new Subject<Buffer>();
    const done = lastValueFrom(bytes$.pipe(operator, toArray()));
    for (const piece of pieces) bytes$.next(Buffer.from(piece));
    bytes$.complete();
    return shape(await done);
  };

  test('with a line limit: a decoder of its own per subscription, carrying bytes between chunks', async () => {
    const operator = decodeFrames(8);
    expect(await run(operator, ['ST', 'AT\nx\n'])).toEqual(['command:STAT', 'name:x']);
    // A second subscription starts clean: nothing carried over from the first.
    expect(await run(operator, ['AT\n'])).toEqual(['error:BAD_COMMAND']);
    expect(await run(operator, ['STAT\nnnnnnnnn\n'])).toEqual(['command:STAT', 'error:LINE_TOO_LONG']);
  });

  test('with a decoder: that decoder is used, so its owner can see midFrame', async () => {
    const decoder = new FrameDecoder(8);
    expect(await run(decodeFrames(decoder), ['STAT\nx\nST'])).toEqual(['command:STAT', 'name:x']);
    expect(decoder.midFrame).toBe(true);
    expect(await run(decodeFrames(new FrameDecoder(8)), ['STAT\nnnnnnnnn\n'])).toEqual(['command:STAT', 'error:LINE_TOO_LONG']);
  });
});
