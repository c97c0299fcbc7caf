import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256 } from '../helpers/raw-client';
import { ServeProcess } from '../ops/ops-support';
import { cannotRun, mountHung, serveWithDeadline, unmountHung } from './support/hung-mount';

/**
 * README (limits): "Every storage call a request awaits (open, …) has a deadline of one stall window:
 * storage that gives no answer (a dead mount, a disk that stopped answering) fails that request with
 * ERR STORAGE_FAILED …; the connection goes on", and one connection's trouble leaves the others alone.
 * Files ≤ 64 KiB are now read with readSync on the server's only thread (local-fs.storage.ts,
 * readSmallFile): a read the kernel never completes freezes the whole process, every connection and
 * every deadline with it. Before, the same read waited in a thread-pool thread and the deadline cut it.
 */
describe('hostile 2026-12-04: a small file on a dead mount', () => {
  let tmp: string;
  let fs: ChildProcess | undefined;
  let serve: ServeProcess | undefined;
  const clients: RawClient[] = [];

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-dead-mount-'));
  });
  afterEach(async () => {
    destroyAll(clients);
    // The file system first: its end aborts the hung read, so the server can then be killed.
    await unmountHung(fs, join(tmp, 'root', 'hung'));
    fs = undefined;
    serve?.kill();
    if (serve) await serve.exited;
    serve = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  const runnable = cannotRun() === undefined;
  /**
   * `warm`: the stuck client first downloads small files in bursts, so that the server's small-read
   * worker (small-reads.ts) is running and takes the hung read: a read it never finishes stops that
   * thread, and every read queued behind it must still be answered.
   */
  const hungDownload = async (size: number, { warm = false } = {}) => {
    const root = join(tmp, 'root');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'ok.txt'), 'fine');
    fs = await mountHung(join(root, 'hung'), size, tmp);
    let port: number;
    ({ serve, port } = await serveWithDeadline(root, tmp));

    const stuck = await RawClient.connect(port);
    clients.push(stuck);
    if (warm) {
      for (let burst = 0; burst < 3; burst++) {
        await stuck.send(Buffer.concat(Array.from({ length: 20 }, () => downloadRequest('ok.txt'))));
        for (let i = 0; i < 20; i++) {
          expect(await stuck.readLine(15_000)).toBe(`OK 4 ${sha256('fine')}`);
          expect((await stuck.readBytes(4, 15_000)).toString()).toBe('fine');
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    // The hung read, with small reads pipelined behind it on the same connection and from another one.
    await stuck.send(Buffer.concat([downloadRequest('hung/hung.bin'), ...Array.from({ length: 5 }, () => downloadRequest('ok.txt'))]));
    // Failure guards, not timings: the deadline is 1 s; 15 s is for a loaded machine.
    const other = await RawClient.connect(port, { readGreeting: false });
    clients.push(other);
    await other.send(Buffer.concat(Array.from({ length: 10 }, () => downloadRequest('ok.txt'))));
    expect(await other.readLine(15_000)).toMatch(/^OK rxfer\//);
    for (let i = 0; i < 10; i++) {
      expect(await other.readLine(15_000)).toBe(`OK 4 ${sha256('fine')}`);
      expect((await other.readBytes(4, 15_000)).toString()).toBe('fine');
    }
    expect(await stuck.readLine(15_000)).toMatch(/^ERR STORAGE_FAILED /);
    for (let i = 0; i < 5; i++) {
      expect(await stuck.readLine(15_000)).toBe(`OK 4 ${sha256('fine')}`);
      expect((await stuck.readBytes(4, 15_000)).toString()).toBe('fine');
    }
  };

  // Passes now: a large file is read through the thread pool, and the deadline cuts the request.
  (runnable ? test : test.skip)('a file of 128 KiB on a dead mount: STORAGE_FAILED for its DOWNLOAD, another client served meanwhile', () => hungDownload(128 * 1024), 90_000);

  // Failing now: a file of up to 64 KiB is read with readSync, and the whole server freezes (the
  // other client never even gets its greeting). Skipped where a FUSE file system cannot be mounted.
  (runnable ? test : test.skip)('a file of 4 KiB on a dead mount: STORAGE_FAILED for its DOWNLOAD, another client served meanwhile', () => hungDownload(4096), 90_000);

  // The same read taken by the small-read worker: it stops that thread, not the server's; the reads
  // queued behind it, and later ones, go through the thread pool and are answered.
  (runnable ? test : test.skip)('a file of 4 KiB on a dead mount, the small-read worker running: the same', () => hungDownload(4096, { warm: true }), 90_000);
});
