import { randomBytes } from 'node:crypto';
import { availableHashes, hashLabel, hashOf, isHashAlgorithm, startHash } from '../../../src/integrity/hash-algorithm';

// Published test vectors: FIPS 180-2 for SHA-256, the BLAKE3 reference implementation's for BLAKE3.
const VECTORS = {
  sha256: {
    '': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    abc: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  },
  blake3: {
    '': 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    abc: '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
  },
} as const;

describe('hash algorithms', () => {
  test('both are available on this platform (BLAKE3 from its prebuilt native module)', () => {
    expect(availableHashes()).toEqual(['sha256', 'blake3']);
  });

  test.each([
    ['sha256', ''],
    ['sha256', 'abc'],
    ['blake3', ''],
    ['blake3', 'abc'],
  ] as const)('%s of %j matches the published vector', (algorithm, input) => {
    expect(hashOf(algorithm, Buffer.from(input))).toBe(VECTORS[algorithm][input]);
  });

  test.each(['sha256', 'blake3'] as const)('%s: reading the digest mid-way does not end the hash (resume relies on it)', (algorithm) => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const running = startHash(algorithm);
    running.update(data.subarray(0, 1024 * 1024));
    expect(running.hex()).toBe(hashOf(algorithm, data.subarray(0, 1024 * 1024)));
    running.update(data.subarray(1024 * 1024));
    expect(running.hex()).toBe(hashOf(algorithm, data));
    expect(running.algorithm).toBe(algorithm);
  });

  test.each(['sha256', 'blake3'] as const)('%s: a caller may reuse its buffer after update (small inputs are held as copies)', (algorithm) => {
    const scratch = Buffer.alloc(1000);
    const running = startHash(algorithm);
    const fed: Buffer[] = [];
    // 100 updates of 1,000 bytes cross the 64 KiB point where BLAKE3 stops holding copies.
    for (let i = 0; i < 100; i++) {
      randomBytes(1000).copy(scratch);
      fed.push(Buffer.from(scratch));
      running.update(scratch);
      if (i === 10 || i === 65 || i === 99) expect(running.hex()).toBe(hashOf(algorithm, Buffer.concat(fed)));
    }
  });

  test('the two algorithms give different digests of the same bytes', () => {
    const data = randomBytes(4096);
    expect(hashOf('sha256', data)).not.toBe(hashOf('blake3', data));
  });

  test('names: only the two are known, and the wire label is upper case', () => {
    expect(['sha256', 'blake3', 'md5', 'SHA256', ''].map(isHashAlgorithm)).toEqual([true, true, false, false, false]);
    expect(hashLabel('blake3')).toBe('BLAKE3');
  });
});
