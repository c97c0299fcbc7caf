import { createHash, randomBytes } from 'node:crypto';
import type { RemoteName } from '../../src/protocol/remote-name';
import { S3Storage } from '../../src/storage/s3/s3.storage';
import { writeAll } from '../storage-contract/storage-contract';
import { describeS3, freshPrefix, s3Config, testClient, wipePrefix } from './s3-env';

const MiB = 1024 * 1024;

describeS3('uploads hold a bounded number of parts', () => {
  const prefix = freshPrefix('bounded');
  const s3 = testClient();
  afterAll(async () => {
    await wipePrefix(s3, prefix);
    s3.destroy();
  });

  test('one upload never holds more than partsInFlight × partBytes, and all uploads together never more than maxBufferedBytes', async () => {
    const storage = new S3Storage(s3Config(prefix, 0, { partBytes: 5 * MiB, partsInFlight: 2, maxBufferedBytes: 15 * MiB }));
    await storage.init();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, storage.bufferedBytes)), 1);
    try {
      const one = randomBytes(40 * MiB);
      const staged = await storage.beginWrite('bounded/one' as RemoteName, { size: one.length, createOnly: false });
      await writeAll(staged.sink, one);
      const digest = createHash('sha256').update(one).digest('hex');
      await staged.commit({ size: one.length, digest, hash: 'sha256' });
      expect(peak).toBeLessThanOrEqual(10 * MiB);
      expect(peak).toBeGreaterThan(0);

      // Three at once want 30 MiB of buffers; the budget lets 15 MiB exist, and all three finish.
      peak = 0;
      const files = [0, 1, 2].map(() => randomBytes(20 * MiB));
      await Promise.all(
        files.map(async (data, i) => {
          const write = await storage.beginWrite(`bounded/many-${i}` as RemoteName, { size: data.length, createOnly: false });
          await writeAll(write.sink, data);
          await write.commit({ size: data.length, digest: createHash('sha256').update(data).digest('hex'), hash: 'sha256' });
        }),
      );
      expect(peak).toBeLessThanOrEqual(15 * MiB);
      expect(storage.bufferedBytes).toBe(0);
    } finally {
      clearInterval(sampler);
      await storage.close();
    }
  }, 60_000);
});
