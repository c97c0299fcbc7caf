import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readlinkSync, utimesSync, writeSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { RxferClient, RxferError, uploadTree } from '../../src/client/index';
import { ensureBuilt, rxfer } from '../helpers/cli';
import { TestServer, startTestServer, stagingFiles } from '../helpers/server';
import { failureOf } from '../helpers/failure-of';

/**
 * Issue 14, item 6: a local file edited in place while `rxfer put` sends it (same size, bytes
 * overwritten before and after the part already sent) was stored as a mix that never existed on
 * disk, and the CLI exited 0. Now the client compares the file's size, mtime, ctime and inode when it
 * opens it and once the last byte is read: a streamed file that changed gets a trailer whose digest
 * cannot match (the server stores nothing, the connection stays in step) and the upload fails with
 * LOCAL_IO; a small file read whole is read again until it holds still (three tries), or refused.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const CHANGED = /changed while it was being sent \(modified at \d{4}-\d\d-\d\dT[\d:.]+Z\); nothing was stored; run the command again/;

let server: TestServer;
let local: string;
const clients: RxferClient[] = [];

beforeEach(async () => {
  server = await startTestServer();
  local = server.scratch;
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.close();
});

const connect = async (port = server.port): Promise<RxferClient> => {
  const client = await RxferClient.connect({ host: '127.0.0.1', port });
  clients.push(client);
  return client;
};

/** A local file whose last change is an hour old, so that the edit the test makes moves its mtime on any kernel. */
const writeAged = async (path: string, data: Buffer): Promise<void> => {
  await writeFile(path, data);
  const anHourAgo = new Date(Date.now() - 3600_000);
  utimesSync(path, anHourAgo, anHourAgo);
};

/** Overwrites `length` bytes of `path` in place at each offset (same size, same inode), as an editor that saves in place does. */
const overwriteInPlace = (path: string, offsets: number[], length = 64 * KiB): void => {
  const fd = openSync(path, 'r+');
  try {
    for (const offset of offsets) writeSync(fd, randomBytes(length), 0, length, offset);
  } finally {
    closeSync(fd);
  }
};

/** What the server holds under `name` now: 'absent' or the digest. */
const storedDigest = async (name: string): Promise<string> => {
  const data = await readFile(join(server.root, name)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  return data === undefined ? 'absent' : sha256(data);
};

describe('issue 14 item 6: a streamed file changed while it is sent is never stored', () => {
  test.each([
    { previous: false, expected: 'nothing under its name' },
    { previous: true, expected: 'the previous version' },
  ])('library upload, overwritten in place mid-transfer: LOCAL_IO naming the file, the server keeps $expected, and the connection goes on', async ({ previous }) => {
    const source = join(local, 'edited.bin');
    const v1 = randomBytes(3 * MiB);
    const client = await connect();
    if (previous) await client.uploadBuffer('edited.bin', v1);
    const size = 8 * MiB;
    await writeAged(source, randomBytes(size));
    let edited = false;
    const onProgress = (done: number) => {
      // Behind the reader (already sent) and far ahead of it (not read yet): a mix, if it were sent.
      if (!edited && done >= 2 * MiB) {
        edited = true;
        overwriteInPlace(source, [0, size - 64 * KiB]);
      }
    };
    const upload = client.upload(source, 'edited.bin', { onProgress });
    // Pipelined behind it on the same connection: must not be disturbed.
    const after = client.uploadBuffer('after.txt', Buffer.from('after\n'));
    const error = await failureOf(upload);
    expect(edited).toBe(true);
    expect(error.code).toBe('LOCAL_IO');
    expect(error.message).toMatch(new RegExp(`^${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ${CHANGED.source}$`));
    await expect(after).resolves.toMatchObject({ size: 6 });
    expect(await storedDigest('edited.bin')).toBe(previous ? sha256(v1) : 'absent');
    expect(await stagingFiles(server.root)).toEqual([]);

    // Unchanged now: the same command again stores it, exact.
    await expect(client.upload(source, 'edited.bin')).resolves.toMatchObject({ size });
    expect(await storedDigest('edited.bin')).toBe(sha256(await readFile(source)));
  });
});

/**
 * Small files are read whole with synchronous reads (≤ 64 KiB); the hook runs the edit inside one:
 * half of the file read, then the whole file overwritten in place, then the rest read, as a writer
 * racing the read would make it.
 */
const editDuringReads = (path: string, times: number): { restore: () => void; readonly edits: number } => {
  const fs = require('node:fs') as typeof import('node:fs');
  const original = fs.readSync;
  let edits = 0;
  fs.readSync = ((fd: number, buffer: Buffer, offset: number, length: number, position: number) => {
    if (edits >= times || readlinkSync(`/proc/self/fd/${fd}`) !== path || length < 2) return original(fd, buffer, offset, length, position);
    const half = Math.floor(length / 2);
    const first = original(fd, buffer, offset, half, position);
    edits++;
    overwriteInPlace(path, [0], fs.statSync(path).size);
    return first + original(fd, buffer, offset + first, length - first, position + first);
  }) as typeof fs.readSync;
  return {
    restore: () => void (fs.readSync = original),
    get edits() {
      return edits;
    },
  };
};

describe('issue 14 item 6: a small file read whole is sent as it was at one moment, or refused', () => {
  test('edited once during its read: read again, and the server holds the file as it is now', async () => {
    const source = join(local, 'note.txt');
    await writeAged(source, randomBytes(40 * KiB));
    const hook = editDuringReads(source, 1);
    let result;
    try {
      result = await (await connect()).upload(source, 'note.txt');
    } finally {
      hook.restore();
    }
    expect(hook.edits).toBe(1);
    const now = await readFile(source);
    expect(result).toMatchObject({ size: now.length, digest: sha256(now) });
    expect(await storedDigest('note.txt')).toBe(sha256(now));
  });

  test('edited during every read: refused after three reads with LOCAL_IO, the previous version kept, the connection goes on', async () => {
    const source = join(local, 'busy.txt');
    const client = await connect();
    const v1 = Buffer.from('the previous version\n');
    await client.uploadBuffer('busy.txt', v1);
    await writeAged(source, randomBytes(40 * KiB));
    const hook = editDuringReads(source, Infinity);
    let error: RxferError;
    try {
      error = await failureOf(client.upload(source, 'busy.txt'));
    } finally {
      hook.restore();
    }
    expect(hook.edits).toBe(3);
    expect(error.code).toBe('LOCAL_IO');
    expect(error.message).toContain(`${source} changed while it was being sent`);
    expect(await storedDigest('busy.txt')).toBe(sha256(v1));
    await expect(client.uploadBuffer('next.txt', Buffer.from('next\n'))).resolves.toMatchObject({ size: 5 });
  });

  test('put -r (library): the file that never holds still is reported, the others are stored', async () => {
    const tree = join(local, 'tree');
    await mkdir(tree);
    const files = { 'a.txt': randomBytes(3000), 'b.txt': randomBytes(20 * KiB), 'c.txt': randomBytes(5000) };
    for (const [name, data] of Object.entries(files)) await writeAged(join(tree, name), data);
    const hook = editDuringReads(join(tree, 'b.txt'), Infinity);
    let error: RxferError;
    try {
      error = await failureOf(uploadTree(await connect(), tree, 'tree'));
    } finally {
      hook.restore();
    }
    expect(error.code).toBe('LOCAL_IO');
    expect(error.message).toMatch(new RegExp(`^1 of 3 files were not stored: .*/tree/b\\.txt ${CHANGED.source}$`));
    expect(await storedDigest('tree/a.txt')).toBe(sha256(files['a.txt']));
    expect(await storedDigest('tree/b.txt')).toBe('absent');
    expect(await storedDigest('tree/c.txt')).toBe(sha256(files['c.txt']));
  });
});

/**
 * Forwards a connection to the server, but stops reading from the client once `holdAt` bytes went
 * up, until `release()`: the client then blocks in the middle of its file, and the test edits it.
 */
class GateProxy {
  private readonly sockets = new Set<Socket>();
  private up = 0;
  private held = false;
  private released = false;
  private onHeld: () => void = () => undefined;
  readonly reached = new Promise<void>((resolve) => (this.onHeld = resolve));

  private constructor(
    private readonly server: Server,
    private readonly holdAt: number,
  ) {}

  static async start(targetPort: number, holdAt: number): Promise<GateProxy> {
    const server = createServer();
    const proxy = new GateProxy(server, holdAt);
    server.on('connection', (client) => proxy.pipe(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  release(): void {
    this.released = true;
    for (const socket of this.sockets) socket.resume();
  }

  private pipe(client: Socket, targetPort: number): void {
    const upstream = createConnection(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    }
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      this.up += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => (this.held && !this.released ? undefined : client.resume()));
      }
      if (!this.held && this.up >= this.holdAt) {
        this.held = true;
        client.pause();
        this.onHeld();
      }
    });
    client.on('end', () => upstream.end());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('issue 14 item 6: the CLI', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  /**
   * 48 MiB, held after 1 MiB: whatever the socket buffers take, the client is still sending when
   * the file is edited, so its last look at the file comes after the edit.
   */
  const SIZE = 48 * MiB;

  const putThroughGate = async (args: string[], edit: () => void): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const gate = await GateProxy.start(server.port, MiB);
    try {
      const running = rxfer([...args, '-p', String(gate.port)]);
      await gate.reached;
      edit();
      gate.release();
      return await running;
    } finally {
      await gate.close();
    }
  };

  test('rxfer put of a file edited in place mid-transfer: exit 1, ERR LOCAL_IO naming it, the previous version kept', async () => {
    const source = join(local, 'disk.img');
    const v1 = Buffer.from('version 1\n');
    await (await connect()).uploadBuffer('disk.img', v1);
    await writeAged(source, randomBytes(SIZE));
    const put = await putThroughGate(['put', source, 'disk.img'], () => overwriteInPlace(source, [0, SIZE - MiB]));
    expect(put.code).toBe(1);
    expect(put.stderr).toMatch(new RegExp(`^rxfer: ERR LOCAL_IO .*disk\\.img ${CHANGED.source}\\n$`));
    expect(await storedDigest('disk.img')).toBe(sha256(v1));
    expect(await stagingFiles(server.root)).toEqual([]);
  }, 60_000);

  test('rxfer put -r with one file edited mid-transfer: the others are stored, exit 1 naming the edited one', async () => {
    const tree = join(local, 'album');
    await mkdir(tree);
    const small = { 'a.txt': randomBytes(2000), 'c.txt': randomBytes(3000) };
    for (const [name, data] of Object.entries(small)) await writeAged(join(tree, name), data);
    const big = join(tree, 'b.bin');
    await writeAged(big, randomBytes(SIZE));
    const put = await putThroughGate(['put', '-r', tree, 'album'], () => overwriteInPlace(big, [0, SIZE - MiB]));
    expect(put.code).toBe(1);
    expect(put.stderr).toMatch(new RegExp(`^rxfer: ERR LOCAL_IO 1 of 3 files were not stored: .*album/b\\.bin ${CHANGED.source}\\n$`));
    expect(await storedDigest('album/a.txt')).toBe(sha256(small['a.txt']));
    expect(await storedDigest('album/b.bin')).toBe('absent');
    expect(await storedDigest('album/c.txt')).toBe(sha256(small['c.txt']));
    expect(await readdir(join(server.root, 'album'))).toEqual(['a.txt', 'c.txt']);
    expect(await stagingFiles(server.root)).toEqual([]);
  }, 60_000);
});
