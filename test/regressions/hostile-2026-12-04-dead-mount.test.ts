import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, destroyAll, downloadRequest, sha256 } from '../helpers/raw-client';
import { ServeProcess } from '../ops/ops-support';

/**
 * A FUSE file system of one file, `hung.bin` (its size the second argument), whose reads are never answered: a dead mount (an
 * NFS server gone, a FUSE daemon stuck). Raw /dev/fuse protocol (7.12), so nothing needs installing.
 */
const HUNG_FS = String.raw`
import ctypes, os, struct, sys
SIZE = int(sys.argv[2])
fd = os.open('/dev/fuse', os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(b'rxfer-hung', sys.argv[1].encode(), b'fuse', 0, f'fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other'.encode()) != 0:
    sys.exit('mount failed: errno %d' % ctypes.get_errno())
def attr(ino, mode, size):
    return struct.pack('<QQQQQQIIIIIIIIII', ino, size, 1, 0, 0, 0, 0, 0, 0, mode, 1, 0, 0, 0, 4096, 0)
def reply(unique, payload=b'', error=0):
    os.write(fd, struct.pack('<IiQ', 16 + len(payload), error, unique) + payload)
while True:
    try:
        req = os.read(fd, 1 << 20)
    except OSError:
        break
    length, opcode, unique, nodeid = struct.unpack_from('<IIQQ', req)
    body = req[40:]
    if opcode == 26:
        reply(unique, struct.pack('<IIIIHHI', 7, 12, 0, 0, 0, 0, 4096))
    elif opcode == 1:
        if body.split(b'\0')[0] == b'hung.bin':
            reply(unique, struct.pack('<QQQQII', 2, 0, 0, 0, 0, 0) + attr(2, 0o100644, SIZE))
        else:
            reply(unique, error=-2)
    elif opcode == 3:
        reply(unique, struct.pack('<QII', 0, 0, 0) + (attr(1, 0o40755, 0) if nodeid == 1 else attr(2, 0o100644, SIZE)))
    elif opcode in (14, 27):
        reply(unique, struct.pack('<QII', 0, 0, 0))
    elif opcode in (15, 2, 42, 36):
        pass  # READ never answered; FORGET and INTERRUPT take no reply
    elif opcode in (18, 25, 29):
        reply(unique)
    elif opcode == 38:
        break
    else:
        reply(unique, error=-38)
`;

const mounted = (target: string): boolean => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === target);

/** Why this machine cannot run the test, or undefined if it can (root, /dev/fuse, python3). */
const cannotRun = (): string | undefined => {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  try {
    execFileSync('python3', ['-c', 'import ctypes']);
  } catch {
    return 'no python3';
  }
  return undefined;
};

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
    fs?.kill('SIGKILL');
    fs = undefined;
    const target = join(tmp, 'root', 'hung');
    for (let i = 0; i < 5 && mounted(target); i++) {
      try {
        execFileSync('umount', ['-l', target]);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    serve?.kill();
    if (serve) await serve.exited;
    serve = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  const runnable = cannotRun() === undefined;
  const hungDownload = async (size: number) => {
    const root = join(tmp, 'root');
    await mkdir(join(root, 'hung'), { recursive: true });
    await writeFile(join(root, 'ok.txt'), 'fine');
    await writeFile(join(tmp, 'hung-fs.py'), HUNG_FS);
    fs = spawn('python3', [join(tmp, 'hung-fs.py'), join(root, 'hung'), String(size)], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !mounted(join(root, 'hung')); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(mounted(join(root, 'hung'))).toBe(true);
    const config = join(tmp, 'rxfer.json');
    await writeFile(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0 },
        storage: { root },
        limits: { stallTimeoutMs: 1000 },
        metrics: { host: '127.0.0.1', port: 0 },
      }),
    );
    serve = ServeProcess.start(['--config', config]);
    const { port } = await serve.ports();

    const stuck = await RawClient.connect(port);
    clients.push(stuck);
    await stuck.send(downloadRequest('hung/hung.bin'));
    // Failure guards, not timings: the deadline is 1 s; 15 s is for a loaded machine.
    const other = await RawClient.connect(port, { readGreeting: false });
    clients.push(other);
    await other.send(downloadRequest('ok.txt'));
    expect(await other.readLine(15_000)).toMatch(/^OK rxfer\//);
    expect(await other.readLine(15_000)).toBe(`OK 4 ${sha256('fine')}`);
    expect(await stuck.readLine(15_000)).toMatch(/^ERR STORAGE_FAILED /);
  };

  // Passes now: a large file is read through the thread pool, and the deadline cuts the request.
  (runnable ? test : test.skip)('a file of 128 KiB on a dead mount: STORAGE_FAILED for its DOWNLOAD, another client served meanwhile', () => hungDownload(128 * 1024), 90_000);

  // Failing now: a file of up to 64 KiB is read with readSync, and the whole server freezes (the
  // other client never even gets its greeting). Skipped where a FUSE file system cannot be mounted.
  (runnable ? test : test.skip)('a file of 4 KiB on a dead mount: STORAGE_FAILED for its DOWNLOAD, another client served meanwhile', () => hungDownload(4096), 90_000);
});
