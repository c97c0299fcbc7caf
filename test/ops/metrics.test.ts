import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/load-config';
import { RunningServer, startServer } from '../../src/server/start-server';
import { RawClient, downloadRequest, sha256, uploadRequest } from '../helpers/raw-client';
import { ManualUpload, eventually, httpGet, sample, scrape } from './ops-support';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;

describe('the operations listener of an in-process server', () => {
  let tmp: string;
  let root: string;
  let running: RunningServer;
  let metricsPort: number;
  const clients: RawClient[] = [];

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-ops-'));
    root = join(tmp, 'root');
    await mkdir(root);
    const config = parseConfig({ server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0 }, storage: { kind: 'local', root }, metrics: { host: '127.0.0.1', port: 0 } });
    running = await startServer(config, { logger: pino({ level: 'silent' }) });
    metricsPort = running.metrics!.port;
  });

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await running.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const connect = async () => {
    const client = await RawClient.connect(running.port);
    clients.push(client);
    return client;
  };

  test('bytes are counted while a 256 MiB upload moves, and the request once when it ends', async () => {
    const before = await scrape(metricsPort);
    expect(sample(before, 'rxfer_bytes_received_total')).toBe(0);
    expect(sample(before, 'rxfer_connections_open')).toBe(0);

    const upload = new ManualUpload(await connect(), 'big.bin', SIZE);
    await upload.begin();
    await upload.sendData(SIZE / 2);
    // Mid-transfer: the counter has moved, the request is not counted yet.
    const during = await eventually('bytes counted mid-upload', async () => {
      const text = await scrape(metricsPort);
      return (sample(text, 'rxfer_bytes_received_total') ?? 0) > 0 ? text : undefined;
    });
    expect(sample(during, 'rxfer_bytes_received_total')).toBeLessThan(SIZE);
    expect(sample(during, 'rxfer_staging_bytes')).toBeGreaterThan(0);
    expect(sample(during, 'rxfer_connections_open')).toBe(1);
    expect(sample(during, 'rxfer_requests_total', { command: 'UPLOAD', outcome: 'ok' })).toBeUndefined();

    expect(await upload.finish()).toMatch(/^OK file data recv 268435456 [0-9a-f]{64}$/);
    const after = await eventually('the request counted', async () => {
      const text = await scrape(metricsPort);
      return sample(text, 'rxfer_requests_total', { command: 'UPLOAD', outcome: 'ok' }) === 1 ? text : undefined;
    });
    expect(sample(after, 'rxfer_bytes_received_total')).toBe(SIZE);
    expect(sample(after, 'rxfer_transfer_duration_seconds_count', { command: 'UPLOAD' })).toBe(1);
    expect(sample(after, 'rxfer_staging_bytes')).toBe(0);
    expect(sample(after, 'rxfer_connections_total')).toBe(1);
    // The commit went through the timed storage adapter.
    expect(sample(after, 'rxfer_storage_operation_seconds_count', { op: 'commit' })).toBe(1);
    expect(sample(after, 'rxfer_storage_operation_seconds_count', { op: 'beginWrite' })).toBe(1);
    // Default process metrics are there too.
    expect(sample(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  test('downloads, refusals and failed logins are counted with labels from fixed sets only', async () => {
    const client = await connect();
    const data = Buffer.alloc(3 * MiB, 1);
    await client.send(uploadRequest('secret-name-a', data));
    expect(await client.readUploadOutcome()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    await client.send(downloadRequest('secret-name-a'));
    expect(await client.readLine()).toBe(`OK ${data.length} ${sha256(data)}`);
    expect((await client.readBytes(data.length)).equals(data)).toBe(true);
    await client.send(downloadRequest('secret-name-missing'));
    expect(await client.readLine()).toMatch(/^NOT FOUND/);
    const intruder = await connect();
    await intruder.send('AUTH nobody.c2VjcmV0\n');
    expect(await intruder.readLine()).toMatch(/^ERR AUTH_FAILED/);

    const text = await eventually('the download counted', async () => {
      const body = await scrape(metricsPort);
      return sample(body, 'rxfer_requests_total', { command: 'DOWNLOAD', outcome: 'ok' }) === 1 ? body : undefined;
    });
    expect(sample(text, 'rxfer_bytes_sent_total')).toBe(data.length);
    expect(sample(text, 'rxfer_requests_total', { command: 'DOWNLOAD', outcome: 'not_found' })).toBe(1);
    expect(sample(text, 'rxfer_auth_failures_total')).toBe(1);
    expect(sample(text, 'rxfer_errors_total', { code: 'AUTH_FAILED' })).toBe(1);
    // No file or user name ever becomes a label value.
    expect(text).not.toMatch(/secret-name|nobody/);
  });

  test('/healthz turns 503 with a reason when the storage folder is removed; /readyz stays 200 while accepting', async () => {
    expect(await httpGet(metricsPort, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await httpGet(metricsPort, '/readyz')).toEqual({ status: 200, body: 'ready\n' });
    await rm(root, { recursive: true, force: true });
    const health = await httpGet(metricsPort, '/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatch(/^unhealthy: storage folder .*root: missing\n$/);
    expect(health.body.split('\n').filter(Boolean)).toHaveLength(1);
    expect((await httpGet(metricsPort, '/nope')).status).toBe(404);
  });
});
