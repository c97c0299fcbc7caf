import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import { MemoryStorage } from '../../src/storage/memory.storage';
import { S3Storage } from '../../src/storage/s3/s3.storage';
import { describeS3, freshPrefix, s3Config, testClient, wipePrefix } from '../s3/s3-env';
import { storageContract } from './storage-contract';

const MiB = 1024 * 1024;

describe('the storage contract: local folder', () => {
  let root: string;
  afterAll(() => rm(root, { recursive: true, force: true }));
  storageContract(async () => {
    root = await mkdtemp(join(tmpdir(), 'rxfer-contract-'));
    const storage = new LocalFsStorage(root);
    await storage.init();
    return storage;
  }, 3 * MiB);
});

describe('the storage contract: memory', () => {
  storageContract(async () => new MemoryStorage(), 3 * MiB);
});

describeS3('the storage contract: S3 (Ceph RGW)', () => {
  const prefix = freshPrefix('contract');
  const s3 = testClient();
  afterAll(async () => {
    await wipePrefix(s3, prefix);
    s3.destroy();
  });
  // Parts of 5 MiB (S3's least): 12 MiB is three parts.
  storageContract(async () => {
    const storage = new S3Storage(s3Config(prefix));
    await storage.init();
    return storage;
  }, 12 * MiB);
});
