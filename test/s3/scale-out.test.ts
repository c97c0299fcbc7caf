import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { RxferClient, RxferError } from '../../src/client/index';
import { S3Keys } from '../../src/storage/s3/s3-keys';
import type { UploadManifest } from '../../src/storage/s3/upload-manifest';
import { ensureBuilt, rxfer, spawnRxfer } from '../helpers/cli';
import { CountingProxy } from '../helpers/counting-proxy';
import { RawClient, batchRequest } from '../helpers/raw-client';
import { TestServer, eventually, startTestServer } from '../helpers/server';
import { S3_ENDPOINTS, TEST_BUCKET, describeS3, freshPrefix, s3Config, testClient, wipePrefix } from './s3-env';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Two rxfer servers in front of one bucket, each through its own RGW gateway when the cluster has
 * two (CEPH_RGW_INSTANCES=2): nothing either server knows is kept only in its own process.
 */
describeS3(`two rxfer servers, one bucket (${S3_ENDPOINTS.length} gateway(s))`, () => {
  const prefix = freshPrefix('scale');
  const s3 = testClient();
  const keys = new S3Keys(prefix);
  let one: TestServer;
  let two: TestServer;
  let local: string;

  beforeAll(async () => {
    ensureBuilt();
    local = await mkdtemp(join(tmpdir(), 'rxfer-s3-scale-'));
    one = await startTestServer({ config: { storage: { kind: 's3', s3: s3Config(prefix, 0) } } });
    two = await startTestServer({ config: { storage: { kind: 's3', s3: s3Config(prefix, 1) } } });
  }, 120_000);
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await rm(local, { recursive: true, force: true });
    await wipePrefix(s3, prefix);
    s3.destroy();
  });

  const connect = (server: TestServer) => RxferClient.connect({ host: '127.0.0.1', port: server.port });

  /** The manifest of `name`'s kept or in-flight upload, read straight from the bucket. */
  const manifestOf = async (name: string): Promise<UploadManifest | undefined> => {
    const got = await s3.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: keys.manifest(keys.object(name)) })).catch(() => undefined);
    return got ? (JSON.parse(await got.Body!.transformToString()) as UploadManifest) : undefined;
  };

  test('a file uploaded through server 1 downloads byte-identical through server 2, and both list it', async () => {
    const big = randomBytes(13 * MiB + 5);
    const small = randomBytes(777);
    const c1 = await connect(one);
    const c2 = await connect(two);
    try {
      await writeFile(join(local, 'big.bin'), big);
      await c1.upload(join(local, 'big.bin'), 'shared/big.bin');
      await c1.uploadBuffer('shared/small.txt', small);
      expect((await c2.downloadBuffer('shared/big.bin')).data.equals(big)).toBe(true);
      expect((await c2.downloadBuffer('shared/small.txt')).data.equals(small)).toBe(true);
      const expected = [
        { name: 'shared/big.bin', size: big.length, digest: sha256(big) },
        { name: 'shared/small.txt', size: small.length, digest: sha256(small) },
      ];
      for (const client of [c1, c2]) expect((await client.list('shared')).map(({ name, size, digest }) => ({ name, size, digest }))).toEqual(expected);
    } finally {
      c1.close();
      c2.close();
    }
  });

  test('a BATCH through server 1: each file verified and stored on its own, seen through server 2', async () => {
    const files = Array.from({ length: 40 }, (_, i) => ({ name: `batch/f${i}`, data: randomBytes(100 + i * 500) }));
    const corrupt = { name: 'batch/corrupt', data: randomBytes(300), sha256: sha256(Buffer.from('something else')) };
    const raw = await RawClient.connect(one.port);
    const c2 = await connect(two);
    try {
      await raw.send(batchRequest([...files.slice(0, 20), corrupt, ...files.slice(20)]));
      const replies = await raw.readLines(41, 60_000);
      expect(replies[20]).toMatch(/^ERR CHECKSUM_MISMATCH /);
      expect(replies.filter((_, i) => i !== 20)).toEqual(files.map((f) => `OK file data recv ${f.data.length} ${sha256(f.data)}`));
      for (const f of [files[0]!, files[39]!]) expect((await c2.downloadBuffer(f.name)).data.equals(f.data)).toBe(true);
      const listed = await c2.list('batch');
      expect(listed.map(({ name, size, digest }) => ({ name, size, digest }))).toEqual(
        files.map((f) => ({ name: f.name, size: f.data.length, digest: sha256(f.data) })).sort((a, b) => (a.name < b.name ? -1 : 1)),
      );
    } finally {
      raw.destroy();
      c2.close();
    }
  });

  test('BLAKE3 uploads keep their digest across servers too', async () => {
    const data = randomBytes(11 * MiB);
    const c1 = await RxferClient.connect({ host: '127.0.0.1', port: one.port, hash: 'blake3' });
    const c2 = await RxferClient.connect({ host: '127.0.0.1', port: two.port, hash: 'blake3' });
    try {
      const { digest } = await c1.uploadBuffer('shared/blake3.bin', data);
      expect((await c2.stat('shared/blake3.bin')).digest).toBe(digest);
      expect((await c2.downloadBuffer('shared/blake3.bin')).data.equals(data)).toBe(true);
    } finally {
      c1.close();
      c2.close();
    }
  });

  test.each([
    ['multipart-sized (6 MiB: two parts each)', 6 * MiB],
    ['small (4 KiB: one PUT each)', 4096],
  ])('16 concurrent ADDFILEs of one name, 8 through each server, %s: exactly one wins, the others get EXISTS', async (_label, size) => {
    const name = `race/${size}.bin`;
    const contents = Array.from({ length: 16 }, () => randomBytes(size));
    const clients = await Promise.all(contents.map((_, i) => connect(i % 2 === 0 ? one : two)));
    try {
      const outcomes = await Promise.all(
        contents.map((data, i) => clients[i]!.uploadBuffer(name, data, { mode: 'create' }).then(() => 'OK', (err: RxferError) => err.code)),
      );
      expect(outcomes.filter((outcome) => outcome === 'OK')).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome === 'EXISTS')).toHaveLength(15);
      const winner = contents[outcomes.indexOf('OK')]!;
      for (const server of [one, two]) {
        const client = await connect(server);
        expect((await client.downloadBuffer(name)).data.equals(winner)).toBe(true);
        client.close();
      }
    } finally {
      for (const client of clients) client.close();
    }
  });

  test('an upload of 64 MiB whose client is SIGKILLed on server 1 is resumed by the same command on server 2, sending less', async () => {
    const data = randomBytes(64 * MiB);
    const source = join(local, 'resume.bin');
    await writeFile(source, data);
    const proxy1 = await CountingProxy.start(one.port);
    const proxy2 = await CountingProxy.start(two.port);
    try {
      const holding = proxy1.holdAfterBytes('up', 40 * MiB);
      const child = spawnRxfer(['put', source, 'resume.bin', '-p', String(proxy1.port), '-q']);
      const exited = once(child, 'exit');
      await holding;
      // The parts before the cut are accepted by S3 and recorded in the bucket's manifest.
      await eventually(async () => ((await manifestOf('resume.bin'))?.bytes ?? 0) >= 30 * MiB, 30_000, 'parts to reach the bucket');
      child.kill('SIGKILL');
      await exited;
      await eventually(async () => (await manifestOf('resume.bin'))?.state === 'kept', 30_000, 'server 1 to keep the upload');
      const kept = (await manifestOf('resume.bin'))!.bytes;

      proxy2.reset();
      const run = await rxfer(['put', source, 'resume.bin', '-p', String(proxy2.port)]);
      expect(run.code).toBe(0);
      expect(run.stderr).toContain('resumed at');
      expect(proxy2.bytes.up).toBeLessThanOrEqual(data.length - kept + 4096);
      const check = await connect(one);
      expect((await check.downloadBuffer('resume.bin')).data.equals(data)).toBe(true);
      check.close();
      expect(await manifestOf('resume.bin')).toBeUndefined();
    } finally {
      await proxy1.close();
      await proxy2.close();
    }
  }, 120_000);

  test('a server stopped mid-upload keeps it in the bucket: the next try, through the other server, resumes at once', async () => {
    const data = randomBytes(40 * MiB);
    const source = join(local, 'stopped.bin');
    await writeFile(source, data);
    const three = await startTestServer({ config: { storage: { kind: 's3', s3: s3Config(prefix, 0) } } });
    try {
      // Half the file, then nothing more: the server is stopped while the upload is in flight.
      const raw = await RawClient.connect(three.port);
      await raw.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nstopped.bin\n`), data.subarray(0, 20 * MiB)]));
      await eventually(async () => ((await manifestOf('stopped.bin'))?.bytes ?? 0) >= 10 * MiB, 30_000, 'parts to reach the bucket');
      await three.stop();
      raw.destroy();
      expect((await manifestOf('stopped.bin'))?.state).toBe('kept');
      const again = await connect(two);
      const result = await again.upload(source, 'stopped.bin');
      expect(result.resumedAt).toBeGreaterThanOrEqual(10 * MiB);
      expect((await again.downloadBuffer('stopped.bin')).data.equals(data)).toBe(true);
      again.close();
    } finally {
      await three.close();
    }
  }, 60_000);

  test('while a 256 MiB upload is in flight, neither server lists or serves it: the old version is served', async () => {
    const old = randomBytes(1000);
    const c1 = await connect(one);
    await c1.uploadBuffer('flight/big.bin', old);
    c1.close();
    const data = randomBytes(256 * MiB);
    // A raw upload, held two thirds of the way through, so the checks run while it is in flight
    // however fast the store is.
    const raw = await RawClient.connect(one.port);
    try {
      const held = 160 * MiB;
      await raw.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nflight/big.bin\n`), data.subarray(0, held)]));
      expect(await raw.readLine(30_000)).toBe('OK file recv');
      await eventually(async () => ((await manifestOf('flight/big.bin'))?.bytes ?? 0) >= 64 * MiB, 60_000, 'a quarter of the upload to reach the bucket');
      for (const server of [one, two]) {
        const client = await connect(server);
        expect((await client.list('flight')).map(({ name, size }) => [name, size])).toEqual([['flight/big.bin', old.length]]);
        expect((await client.downloadBuffer('flight/big.bin')).data.equals(old)).toBe(true);
        expect(await client.stat('flight/big.bin')).toMatchObject({ size: old.length });
        client.close();
      }
      await raw.send(Buffer.concat([data.subarray(held), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
      expect(await raw.readLine(60_000)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    } finally {
      raw.destroy();
    }
    const c2 = await connect(two);
    expect((await c2.stat('flight/big.bin')).size).toBe(data.length);
    expect((await c2.downloadBuffer('flight/big.bin')).data.equals(data)).toBe(true);
    c2.close();
  }, 120_000);
});
