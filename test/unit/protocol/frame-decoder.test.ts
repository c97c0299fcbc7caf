import { createHash } from 'node:crypto';
import { RxferError } from '../../../src/errors/rxfer-error';
import { Frame } from '../../../src/protocol/frame';
import { FrameDecoder } from '../../../src/protocol/frame-decoder';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const MAX_LINE = 4096;

// Data blocks are never interpreted: newlines, CRLF, NUL, and text that looks like requests.
const uploaded = Buffer.concat([Buffer.from('line 1\nline 2\r\n\0\0'), Buffer.from([0xff, 0x0d]), Buffer.from('\nQUIT\nSHA256 x\n\r')]);
const added = Buffer.from('résumé\n');

/** UPLOAD with awkward data, ADDFILE over CRLF lines, DOWNLOAD, a 0-byte UPLOAD, QUIT. */
const SESSION = Buffer.concat([
  Buffer.from(`UPLOAD ${uploaded.length}\ndir/data.bin\n`),
  uploaded,
  Buffer.from(`SHA256 ${sha256(uploaded)}\n`),
  Buffer.from(`addfile ${added.length}\r\nrésumé 日本.txt\r\n`),
  added,
  Buffer.from(`SHA256 ${sha256(added).toUpperCase()}\r\n`),
  Buffer.from('DOWNLOAD\ndir/data.bin\n'),
  Buffer.from('UPLOAD 0\nempty\n'),
  Buffer.from(`SHA256 ${sha256(Buffer.alloc(0))}\n`),
  Buffer.from('QUIT\n'),
]);

/** The session as it must decode, with each data block as one chunk. */
const EXPECTED: Frame[] = [
  { type: 'command', command: { verb: 'UPLOAD', size: uploaded.length } },
  { type: 'name', raw: Buffer.from('dir/data.bin') },
  { type: 'chunk', bytes: uploaded },
  { type: 'trailer', trailer: { hash: 'sha256', digest: sha256(uploaded) } },
  { type: 'command', command: { verb: 'ADDFILE', size: added.length } },
  { type: 'name', raw: Buffer.from('résumé 日本.txt') },
  { type: 'chunk', bytes: added },
  { type: 'trailer', trailer: { hash: 'sha256', digest: sha256(added) } },
  { type: 'command', command: { verb: 'DOWNLOAD' } },
  { type: 'name', raw: Buffer.from('dir/data.bin') },
  { type: 'command', command: { verb: 'UPLOAD', size: 0 } },
  { type: 'name', raw: Buffer.from('empty') },
  { type: 'trailer', trailer: { hash: 'sha256', digest: sha256(Buffer.alloc(0)) } },
  { type: 'command', command: { verb: 'QUIT' } },
];

/** Feeds the pieces (each copied, as separate socket reads would be) to one decoder. */
const decode = (pieces: readonly Buffer[], maxLine = MAX_LINE): Frame[] => {
  const decoder = new FrameDecoder(maxLine);
  return pieces.flatMap((piece) => decoder.push(Buffer.from(piece)));
};

/** Joins consecutive chunk frames: how a data block is split is the only thing allowed to vary. */
const joinChunks = (frames: readonly Frame[]): Frame[] => {
  const out: Frame[] = [];
  for (const frame of frames) {
    const last = out[out.length - 1];
    if (frame.type === 'chunk' && last?.type === 'chunk') out[out.length - 1] = { type: 'chunk', bytes: Buffer.concat([last.bytes, frame.bytes]) };
    else out.push(frame);
  }
  return out;
};

/** The chunk frames' bytes, concatenated: must be exactly the data blocks, in order. */
const chunkBytes = (frames: readonly Frame[]): Buffer => Buffer.concat(frames.flatMap((frame) => (frame.type === 'chunk' ? [frame.bytes] : [])));

const errorOf = (frames: readonly Frame[]): RxferError => {
  const last = frames[frames.length - 1];
  if (last?.type !== 'protocolError') throw new Error(`expected a protocolError last, got ${JSON.stringify(frames.map((f) => f.type))}`);
  return last.error;
};

describe('FrameDecoder: a sample session', () => {
  test('fed whole, gives every frame, with each data block as one chunk', () => {
    expect(decode([SESSION])).toEqual(EXPECTED);
  });

  test('fed byte by byte, gives the same frames once chunks are joined, and no empty chunk', () => {
    const frames = decode([...SESSION].map((byte) => Buffer.from([byte])));
    expect(frames.some((frame) => frame.type === 'chunk' && frame.bytes.length === 0)).toBe(false);
    expect(joinChunks(frames)).toEqual(EXPECTED);
  });

  test('split into two pieces at every byte offset, gives the same frames', () => {
    const expectedData = chunkBytes(EXPECTED);
    for (let at = 0; at <= SESSION.length; at++) {
      const frames = decode([SESSION.subarray(0, at), SESSION.subarray(at)]);
      const label = `split at ${at}`;
      expect({ label, frames: joinChunks(frames) }).toEqual({ label, frames: EXPECTED });
      expect({ label, data: chunkBytes(frames) }).toEqual({ label, data: expectedData });
      expect({ label, empty: frames.filter((frame) => frame.type === 'chunk' && frame.bytes.length === 0).length }).toEqual({ label, empty: 0 });
    }
  });

  test('split into three pieces at pseudo-random offsets (fixed seed), gives the same frames', () => {
    let seed = 42;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const [a, b] = [next(SESSION.length + 1), next(SESSION.length + 1)].sort((x, y) => x - y) as [number, number];
      const frames = decode([SESSION.subarray(0, a), SESSION.subarray(a, b), SESSION.subarray(b)]);
      expect({ a, b, frames: joinChunks(frames) }).toEqual({ a, b, frames: EXPECTED });
    }
  });

  test('several frames in one chunk, then the rest of the session in another', () => {
    const decoder = new FrameDecoder(MAX_LINE);
    const firstUploadEnds = SESSION.indexOf('addfile');
    const first = decoder.push(SESSION.subarray(0, firstUploadEnds));
    expect(first).toEqual(EXPECTED.slice(0, 4));
    expect(decoder.push(SESSION.subarray(firstUploadEnds))).toEqual(EXPECTED.slice(4));
  });

  test('data chunks are the exact input bytes, and names are copies that outlive the input', () => {
    const input = Buffer.from('UPLOAD 3\nname\nabcSHA256 ' + sha256(Buffer.from('abc')) + '\n');
    const frames = new FrameDecoder(MAX_LINE).push(input);
    input.fill(0);
    expect(frames[1]).toEqual({ type: 'name', raw: Buffer.from('name') });
  });

  test('midFrame is true exactly while a frame is incomplete', () => {
    const decoder = new FrameDecoder(MAX_LINE);
    expect(decoder.midFrame).toBe(false);
    decoder.push(Buffer.from('UPL'));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from('OAD 2\nn\na'));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from(`bSHA256 ${sha256(Buffer.from('ab'))}`));
    expect(decoder.midFrame).toBe(true);
    decoder.push(Buffer.from('\n'));
    expect(decoder.midFrame).toBe(false);
  });
});

describe('FrameDecoder: lines', () => {
  test('CRLF and LF lines decode alike; only one trailing CR is dropped', () => {
    expect(decode([Buffer.from('DOWNLOAD\r\na\r\nDOWNLOAD\nb\r\r\n')])).toEqual([
      { type: 'command', command: { verb: 'DOWNLOAD' } },
      { type: 'name', raw: Buffer.from('a') },
      { type: 'command', command: { verb: 'DOWNLOAD' } },
      { type: 'name', raw: Buffer.from('b\r') },
    ]);
  });

  test('a name line is kept as raw bytes, invalid UTF-8 included (the name check refuses it later)', () => {
    const raw = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
    expect(decode([Buffer.concat([Buffer.from('DOWNLOAD\n'), raw, Buffer.from('\n')])])[1]).toEqual({ type: 'name', raw });
  });

  test('a line of exactly maxLineBytes (newline included) is accepted, CR counted', () => {
    const max = 32;
    const name = 'n'.repeat(max - 2);
    expect(decode([Buffer.from(`DOWNLOAD\n${name}\r\n`)], max)[1]).toEqual({ type: 'name', raw: Buffer.from(name) });
    expect(errorOf(decode([Buffer.from(`DOWNLOAD\n${name}x\r\n`)], max)).code).toBe('LINE_TOO_LONG');
  });

  test('LINE_TOO_LONG carries the real number of bytes seen, counted in bytes not characters', () => {
    const max = 64;
    // 30 characters, 90 bytes of UTF-8: a limit counted in UTF-16 units would let it through.
    const line = Buffer.from(`${'日'.repeat(30)}\n`);
    const error = errorOf(decode([Buffer.from('DOWNLOAD\n'), line], max));
    expect(error.code).toBe('LINE_TOO_LONG');
    expect(error.detail).toEqual({ limit: max, seen: line.length });
    expect(error.message).toContain(String(line.length));
    expect(error.message).toContain(String(max));
  });

  test('LINE_TOO_LONG counts the bytes carried over from earlier pushes (not 0 after a reset)', () => {
    const max = 64;
    const decoder = new FrameDecoder(max);
    expect(decoder.push(Buffer.from('x'.repeat(40)))).toEqual([]);
    const frames = decoder.push(Buffer.from('y'.repeat(40)));
    const error = errorOf(frames);
    expect(error.detail).toEqual({ limit: max, seen: 80 });
    expect(error.message).toContain('80');
  });

  test('LINE_TOO_LONG is raised as soon as the limit is passed, without waiting for the newline', () => {
    const max = 64;
    const decoder = new FrameDecoder(max);
    let frames: Frame[] = [];
    let fed = 0;
    while (frames.length === 0 && fed < 1000) {
      frames = decoder.push(Buffer.from('z'));
      fed++;
    }
    expect(fed).toBe(max + 1);
    expect(errorOf(frames).detail).toEqual({ limit: max, seen: max + 1 });
  });

  test('the limit applies to trailer lines too, but never to data blocks', () => {
    const max = 256;
    const data = Buffer.alloc(10 * max, 'd');
    const ok = decode([Buffer.from(`UPLOAD ${data.length}\nbig\n`), data, Buffer.from(`SHA256 ${sha256(data)}\n`)], max);
    expect(joinChunks(ok).map((frame) => frame.type)).toEqual(['command', 'name', 'chunk', 'trailer']);
    const long = decode([Buffer.from(`UPLOAD 1\nn\nx${'S'.repeat(max)}\n`)], max);
    expect(errorOf(long).code).toBe('LINE_TOO_LONG');
  });
});

describe('FrameDecoder: errors', () => {
  test.each([
    ['an unknown verb', 'STORE 5\n'],
    ['an empty line', '\n'],
    ['UPLOAD without a size', 'UPLOAD\n'],
    ['a negative size', 'UPLOAD -1\n'],
    ['a size with a plus sign', 'ADDFILE +5\n'],
    ['a size that is not decimal', 'UPLOAD 0x10\n'],
    ['a fractional size', 'UPLOAD 1.5\n'],
    ['a size beyond 2^53', 'UPLOAD 99999999999999999\n'],
    ['extra arguments', 'UPLOAD 5 6\n'],
    ['DOWNLOAD with the name on the command line', 'DOWNLOAD file.txt\n'],
    ['QUIT with an argument', 'QUIT now\n'],
  ])('%s: BAD_COMMAND', (_label, line) => {
    const frames = decode([Buffer.from(line)]);
    expect(frames).toHaveLength(1);
    expect(errorOf(frames).code).toBe('BAD_COMMAND');
  });

  test.each([
    ['a short digest', `SHA256 ${'a'.repeat(63)}\n`],
    ['a long digest', `SHA256 ${'a'.repeat(65)}\n`],
    ['non-hex digits', `SHA256 ${'g'.repeat(64)}\n`],
    ['another algorithm', `SHA1 ${'a'.repeat(40)}\n`],
    ['no trailer at all, just the next request', 'QUIT\n'],
    ['an empty line', '\n'],
  ])('a bad trailer (%s): BAD_TRAILER after the data', (_label, trailer) => {
    const frames = decode([Buffer.from(`UPLOAD 2\nn\nab${trailer}`)]);
    expect(frames.map((frame) => frame.type)).toEqual(['command', 'name', 'chunk', 'protocolError']);
    expect(errorOf(frames).code).toBe('BAD_TRAILER');
  });

  test('after an error the decoder stops: the rest of the chunk and later pushes give nothing', () => {
    const decoder = new FrameDecoder(MAX_LINE);
    const frames = decoder.push(Buffer.from('BOGUS\nDOWNLOAD\nname\n'));
    expect(frames).toHaveLength(1);
    expect(errorOf(frames).code).toBe('BAD_COMMAND');
    expect(decoder.push(Buffer.from('QUIT\n'))).toEqual([]);
    expect(decoder.push(SESSION)).toEqual([]);
  });

  test('QUIT ends the input: nothing after it is decoded, in the same chunk or later, and no frame is owed', () => {
    const decoder = new FrameDecoder(MAX_LINE);
    const frames = decoder.push(Buffer.from('STAT\nx\nQUIT\nDELETE\nkeep\nUPLOAD 2\nn\nab'));
    expect(frames.map((frame) => frame.type)).toEqual(['command', 'name', 'command']);
    expect(frames[2]).toEqual({ type: 'command', command: { verb: 'QUIT' } });
    expect(decoder.push(SESSION)).toEqual([]);
    expect(decoder.push(Buffer.from('garbage without a newline'))).toEqual([]);
    expect(decoder.midFrame).toBe(false);
  });

  test('after an error no frame is owed either (the stall guard must not cut the replies before it short)', () => {
    const decoder = new FrameDecoder(MAX_LINE);
    decoder.push(Buffer.from('BOGUS\nUPLOAD 5\nn\nab'));
    expect(decoder.midFrame).toBe(false);
  });

  test('frames before the error in the same chunk are still delivered', () => {
    const frames = decode([Buffer.from('DOWNLOAD\na\nDOWNLOAD\nb\nNOPE\nDOWNLOAD\nc\n')]);
    expect(frames.map((frame) => frame.type)).toEqual(['command', 'name', 'command', 'name', 'protocolError']);
  });
});
