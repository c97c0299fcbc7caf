import { randomBytes } from 'node:crypto';
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import { CreateMultipartUploadCommand, DeleteBucketCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { RxferClient } from '../../src/client/index';
import { parseConfig } from '../../src/config/load-config';
import { startServer } from '../../src/server/start-server';
import { NameLease } from '../../src/storage/s3/name-lease';
import { S3Keys } from '../../src/storage/s3/s3-keys';
import { S3Storage } from '../../src/storage/s3/s3.storage';
import type { RemoteName } from '../../src/protocol/remote-name';
import { writeAll } from '../storage-contract/storage-contract';
import { RawClient, sha256 } from '../helpers/raw-client';
import { TestServer, eventually, startTestServer } from '../helpers/server';
import { S3_ENDPOINT, TEST_BUCKET, describeS3, freshPrefix, keysUnder, s3Config, testClient, wipePrefix } from './s3-env';

const MiB = 1024 * 1024;

/** A TCP relay to the gateway on a fixed port, that can be cut (a gateway going away) and brought back. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: URL) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = createConnection(Number(this.target.port), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => this.sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

describeS3('S3 faults, start-up and leftovers', () => {
  const prefix = freshPrefix('faults');
  const s3 = testClient();
  const keys = new S3Keys(prefix);
  afterAll(async () => {
    await wipePrefix(s3, prefix);
    s3.destroy();
  });

  test('a missing bucket fails start-up with an error naming it, unless createBucket', async () => {
    const bucket = `rxfer-missing-${randomBytes(3).toString('hex')}`;
    const config = (createBucket: boolean) =>
      parseConfig({ server: { port: 0, shutdownGraceMs: 0 }, storage: { kind: 's3', s3: { ...s3Config(prefix), bucket, createBucket } }, log: { level: 'silent' } });
    await expect(startServer(config(false))).rejects.toThrow(new RegExp(`S3 bucket ${bucket} at .* does not exist`));
    const server = await startServer(config(true));
    await server.close();
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  });

  test('the gateway going away mid-upload gives the client a clean ERR and stores nothing; the server works again once it is back', async () => {
    const relay = new Relay(new URL(S3_ENDPOINT!));
    await relay.start();
    let server: TestServer | undefined;
    try {
      server = await startTestServer({ config: { storage: { kind: 's3', s3: s3Config(prefix, 0, { endpoint: `http://127.0.0.1:${relay.port}`, maxAttempts: 2 }) } } });
      const data = randomBytes(40 * MiB);
      // A raw upload, held after 15 MiB so the gateway goes away while it is in flight.
      const raw = await RawClient.connect(server.port);
      await raw.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\ncut/big.bin\n`), data.subarray(0, 15 * MiB)]));
      expect(await raw.readLine(30_000)).toBe('OK file recv');
      await eventually(async () => (await keysUnder(s3, prefix + '.rxfer/partials/')).length > 0, 30_000, 'the upload to start in the bucket');
      await relay.cut();
      await raw.send(Buffer.concat([data.subarray(15 * MiB), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
      expect(await raw.readLine(60_000)).toMatch(/^ERR STORAGE_FAILED .*cut\/big\.bin/);
      raw.destroy();
      await expect(s3.send(new HeadObjectCommand({ Bucket: TEST_BUCKET, Key: keys.object('cut/big.bin') }))).rejects.toMatchObject({ name: 'NotFound' });
      await relay.start();
      const again = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
      const small = randomBytes(6 * MiB);
      await again.uploadBuffer('cut/big.bin', small);
      expect((await again.downloadBuffer('cut/big.bin')).data.equals(small)).toBe(true);
      again.close();
    } finally {
      await server?.close();
      await relay.cut().catch(() => undefined);
    }
  }, 60_000);

  test('leases: one holder at a time across instances; a crashed holder’s lease is taken over once stale, by exactly one', async () => {
    const [a, b] = [new NameLease(s3, TEST_BUCKET, keys, 1500, 10_000), new NameLease(s3, TEST_BUCKET, keys, 1500, 10_000)];
    const key = keys.object('lease/one');
    const events: string[] = [];
    const hold = (lease: NameLease, who: string) =>
      lease.with([key], async () => {
        events.push(`${who}+`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        events.push(`${who}-`);
      });
    await Promise.all([hold(a, 'a'), hold(b, 'b'), hold(a, 'c'), hold(b, 'd')]);
    for (let i = 0; i < events.length; i += 2) expect(events[i]!.slice(0, 1)).toBe(events[i + 1]!.slice(0, 1));

    // A lease left by a crash: the next holder waits until it is stale, then takes it over.
    await s3.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: keys.lease(key), Body: '{"owner":"crashed"}' }));
    const started = Date.now();
    let inside = 0;
    let most = 0;
    await Promise.all(
      [a, b, a, b].map((lease) =>
        lease.with([key], async () => {
          most = Math.max(most, ++inside);
          await new Promise((resolve) => setTimeout(resolve, 50));
          inside--;
        }),
      ),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(most).toBe(1);
  }, 60_000);

  test('a name longer than an S3 key can be is NAME_INVALID; a file and a folder never share a name', async () => {
    const storage = new S3Storage(s3Config(prefix));
    await storage.init();
    try {
      const long = Array.from({ length: 5 }, () => 'x'.repeat(250)).join('/') as RemoteName;
      const code = (promise: Promise<unknown>) => promise.then(() => 'OK', (err: { code?: string }) => err.code);
      await expect(code(storage.beginWrite(long, { size: 10, createOnly: false }))).resolves.toBe('NAME_INVALID');
      await expect(code(storage.stat(long))).resolves.toBe('NAME_INVALID');
      await expect(code(storage.sizeOf(long))).resolves.toBe('NAME_INVALID');
      await expect(code(storage.openRead(long))).resolves.toBe('NAME_INVALID');
      await expect(code(storage.remove(long))).resolves.toBe('NAME_INVALID');
      // S3 has no folders, but a tree must stay one a client can download into a disk.
      const file = await storage.beginWrite('tree/file' as RemoteName, { size: 3, createOnly: false });
      await writeAll(file.sink, Buffer.from('abc'));
      await file.commit({ size: 3, digest: sha256(Buffer.from('abc')), hash: 'sha256' });
      await expect(code(storage.beginWrite('tree/file/inside' as RemoteName, { size: 3, createOnly: true }))).resolves.toBe('NAME_CONFLICT');
      await expect(code(storage.beginWrite('tree' as RemoteName, { size: 3, createOnly: true }))).resolves.toBe('NAME_CONFLICT');
      await expect(code(storage.makeFolder('tree/file' as RemoteName))).resolves.toBe('EXISTS');
    } finally {
      await storage.close();
    }
  });

  test('the sweeper removes what crashes leave: an orphan multipart upload, a completed staging object, an idle kept upload', async () => {
    // Its own prefix: the tests above leave what they should (a lease's takeover token, the manifest of
    // the upload cut with the gateway, still fresh), which this sweep must not count.
    const own = freshPrefix('sweep');
    const keys = new S3Keys(own);
    const storage = new S3Storage(s3Config(own));
    await storage.init();
    try {
      await s3.send(new CreateMultipartUploadCommand({ Bucket: TEST_BUCKET, Key: keys.staging('orphan') }));
      await s3.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: keys.staging('completed'), Body: randomBytes(1000) }));
      const staged = await storage.beginWrite('sweep/kept' as RemoteName, { size: 20 * MiB, createOnly: false });
      await writeAll(staged.sink, randomBytes(12 * MiB));
      const kept = await staged.suspend();
      expect(kept).toBe(10 * MiB);
      await expect(storage.usage('sweep')).resolves.toBe(kept);
      expect(await storage.expirePartialUploads(3_600_000)).toBe(0);
      expect((await keysUnder(s3, keys.reserved)).length).toBeGreaterThan(0);
      await expect(storage.expirePartialUploads(0)).resolves.toBe(kept + 1000);
      expect(await keysUnder(s3, keys.reserved)).toEqual([]);
      await expect(storage.partialUpload('sweep/kept' as RemoteName)).resolves.toBeUndefined();
    } finally {
      await storage.close();
      await wipePrefix(s3, own);
    }
  });
});
