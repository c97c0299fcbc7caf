import { parseConfig } from '../../src/config/load-config';

const s3 = (s3: Record<string, unknown>) => () => parseConfig({ storage: { kind: 's3', s3 } });

describe('storage.s3 configuration', () => {
  test('the keys the issue gives, exactly, with defaults for the tuning keys', () => {
    const config = parseConfig({
      storage: { kind: 's3', s3: { endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', bucket: 'rxfer', prefix: '', forcePathStyle: true, createBucket: false } },
    });
    expect(config.storage.s3).toEqual({
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      bucket: 'rxfer',
      prefix: '',
      forcePathStyle: true,
      createBucket: false,
      partBytes: 16 * 1024 * 1024,
      partsInFlight: 4,
      maxBufferedBytes: 256 * 1024 * 1024,
      maxAttempts: 4,
    });
    // No endpoint: AWS itself.
    expect(parseConfig({ storage: { kind: 's3' } }).storage.s3.endpoint).toBeUndefined();
  });

  test('bad values are refused with the key named', () => {
    expect(s3({ prefix: '/abs/' })).toThrow(/storage\.s3\.prefix: expected "" or a key prefix ending in "\/"/);
    expect(s3({ prefix: 'no-slash' })).toThrow(/storage\.s3\.prefix/);
    expect(s3({ bucket: 'Bad_Bucket' })).toThrow(/storage\.s3\.bucket: expected an S3 bucket name/);
    expect(s3({ endpoint: 'ftp://x' })).toThrow(/storage\.s3\.endpoint/);
    expect(s3({ partBytes: 1024 * 1024 })).toThrow(/storage\.s3\.partBytes/);
    expect(s3({ partsInFlight: 0 })).toThrow(/storage\.s3\.partsInFlight/);
    expect(s3({ maxBufferedBytes: 8 * 1024 * 1024, partBytes: 16 * 1024 * 1024 })).toThrow(/storage\.s3\.maxBufferedBytes: maxBufferedBytes must be at least partBytes/);
    // Credentials are never read from the config file.
    expect(s3({ accessKeyId: 'AKIA…' })).toThrow(/storage\.s3.*accessKeyId/);
  });
});
