import { createHash, randomBytes } from 'node:crypto';
import { FrameDecoder } from '../../../src/protocol/frame-decoder';
import type { Frame } from '../../../src/protocol/frame';
import { formatBatchEntry, parseBatchEntry } from '../../../src/protocol/command';

/** How the decoder frames a BATCH: each file one frame, however the bytes were cut into reads. */

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const batch = (files: readonly { name: string; data: Buffer }[]): Buffer =>
  Buffer.concat([
    Buffer.from(`BATCH ${files.length}\n`),
    ...files.flatMap(({ name, data }) => [Buffer.from(formatBatchEntry(data.length, { hash: 'sha256', digest: sha(data) })), Buffer.from(`${name}\n`), data]),
  ]);

/** Feeds `input` to one decoder in reads cut at `cuts`. */
const decode = (input: Buffer, cuts: readonly number[] = [], maxLine = 4096): { frames: Frame[]; decoder: FrameDecoder } => {
  const decoder = new FrameDecoder(maxLine);
  const frames: Frame[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    frames.push(...decoder.push(input.subarray(from, cut)));
    from = cut;
  }
  return { frames, decoder };
};

const shape = (frames: readonly Frame[]): string[] =>
  frames.map((frame) => {
    switch (frame.type) {
      case 'command':
        return `command:${frame.command.verb}`;
      case 'fileInBatch':
        return `file:${frame.raw.toString()}:${frame.size}:${frame.declared.digest.slice(0, 8)}:${sha(frame.bytes).slice(0, 8)}`;
      case 'protocolError':
        return `error:${frame.error.code}`;
      default:
        return frame.type;
    }
  });

describe('BATCH framing', () => {
  const files = [
    { name: 'a b/c', data: randomBytes(300) },
    { name: 'empty', data: Buffer.alloc(0) },
    { name: 'lines', data: Buffer.from('UPLOAD 5\nname\nBATCH 2\n') },
  ];
  const whole = Buffer.concat([batch(files), Buffer.from('STAT\nx\n')]);
  const expected = shape(decode(whole).frames);

  test('each file is one frame with its entry, name and exact bytes; the request after the batch is read as one', () => {
    expect(expected).toEqual([
      'command:BATCH',
      ...files.map((f) => `file:${f.name}:${f.data.length}:${sha(f.data).slice(0, 8)}:${sha(f.data).slice(0, 8)}`),
      'command:STAT',
      'name',
    ]);
  });

  test('cut into reads anywhere, the frames are the same', () => {
    for (let cut = 1; cut < whole.length; cut += 7) expect(shape(decode(whole, [cut]).frames)).toEqual(expected);
    const everyByte = Array.from({ length: whole.length - 1 }, (_, i) => i + 1);
    expect(shape(decode(whole, everyByte).frames)).toEqual(expected);
  });

  test('a file\'s bytes are its own copy, not a view of the read they came in', () => {
    const input = batch([files[0]!]);
    const { frames } = decode(input);
    input.fill(0);
    const file = frames.find((frame) => frame.type === 'fileInBatch');
    expect(file?.type === 'fileInBatch' && file.bytes.equals(files[0]!.data)).toBe(true);
  });

  test('mid-batch the decoder is mid-frame, even between files (the peer owes the rest)', () => {
    const input = batch(files);
    const firstFileEnd = input.indexOf(files[0]!.data) + files[0]!.data.length;
    expect(decode(input, [], 4096).decoder.midFrame).toBe(false);
    expect(decode(input.subarray(0, firstFileEnd)).decoder.midFrame).toBe(true);
    expect(decode(Buffer.from('BATCH 1\n')).decoder.midFrame).toBe(true);
  });

  test('a bad entry line fails the stream: nothing after it becomes a frame', () => {
    const input = Buffer.concat([Buffer.from(`BATCH 2\n1 SHA256 ${sha(Buffer.from('x'))}\nok\nx`), Buffer.from('2 SHA256 zz\nname\nyyDELETE\nz\n')]);
    expect(shape(decode(input).frames)).toEqual(['command:BATCH', `file:ok:1:${sha(Buffer.from('x')).slice(0, 8)}:${sha(Buffer.from('x')).slice(0, 8)}`, 'error:BAD_COMMAND']);
  });

  test('files over the batch byte limit fail the stream at the file that does not fit', () => {
    const input = Buffer.from(`BATCH 2\n600000 SHA256 ${'0'.repeat(64)}\na\n`);
    const first = decode(input).frames;
    expect(shape(first)).toEqual(['command:BATCH']);
    const over = Buffer.concat([input, Buffer.alloc(600000), Buffer.from(`448577 SHA256 ${'0'.repeat(64)}\n`)]);
    expect(shape(decode(over).frames)).toEqual(['command:BATCH', 'file:a:600000:00000000:' + sha(Buffer.alloc(600000)).slice(0, 8), 'error:BAD_COMMAND']);
    const exact = Buffer.concat([input, Buffer.alloc(600000), Buffer.from(`448576 SHA256 ${'0'.repeat(64)}\nb\n`), Buffer.alloc(448576)]);
    expect(shape(decode(exact).frames).slice(-1)[0]).toMatch(/^file:b:448576:/);
  });
});

describe('the BATCH entry line', () => {
  test('round-trips size and digest, the algorithm named in upper case', () => {
    const digest = 'ab'.repeat(32);
    expect(formatBatchEntry(12, { hash: 'blake3', digest })).toBe(`12 BLAKE3 ${digest}\n`);
    expect(parseBatchEntry(`12 BLAKE3 ${digest.toUpperCase()}`)).toEqual({ size: 12, declared: { hash: 'blake3', digest } });
  });

  test.each([
    ['no digest', '12 SHA256'],
    ['a lower-case algorithm', `12 sha256 ${'a'.repeat(64)}`],
    ['an unknown algorithm', `12 MD5 ${'a'.repeat(64)}`],
    ['a signed size', `+12 SHA256 ${'a'.repeat(64)}`],
    ['a leading zero', `012 SHA256 ${'a'.repeat(64)}`],
    ['a short digest', `12 SHA256 ${'a'.repeat(63)}`],
    ['two spaces', `12  SHA256 ${'a'.repeat(64)}`],
    ['a size beyond exact integers', `99999999999999999 SHA256 ${'a'.repeat(64)}`],
  ])('refuses %s as BAD_COMMAND', (_label, line) => {
    expect(() => parseBatchEntry(line)).toThrow(expect.objectContaining({ code: 'BAD_COMMAND' }));
  });
});
