import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { RxferClient, downloadTree, localPathFor, uploadTree } from '../../src/client/index';
import { RxferError } from '../../src/errors/rxfer-error';
import { formatListingLine } from '../../src/protocol/listing';
import { startTestServer, type TestServer } from '../helpers/server';
import { CANARY, HOSTILE_NAMES } from './support/hostile-names';

/**
 * The client distrusts the server: a malicious server answers LIST with hostile names (and would
 * serve any bytes for them); `get -r` must refuse before writing anything, and nothing may appear
 * outside the target folder.
 */

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const CONTENT = Buffer.from('planted by a malicious server\n');

/** A fake rxfer server that lists `names` (raw bytes, or strings sent as UTF-8) and serves CONTENT for any DOWNLOAD. */
const maliciousServer = async (names: readonly (string | Buffer)[]): Promise<{ port: number; close(): Promise<void> }> => {
  const raw = names.map((name) => (typeof name === 'string' ? Buffer.from(name, 'utf8') : name));
  const server: Server = createServer((socket: Socket) => {
    socket.write('OK rxfer/1 caps=upload,addfile,download,list,auth,quit hash=sha256 max-line=4096 auth=optional\n');
    let buffered = '';
    const lines: string[] = [];
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
      while (lines.length >= 2 || lines[0] === 'QUIT') {
        const verb = lines.shift()!;
        if (verb === 'QUIT') {
          socket.end('OK bye\n');
          return;
        }
        lines.shift();
        if (verb === 'LIST') {
          const head = formatListingLine({ name: '', size: CONTENT.length, mtimeMs: 0, digest: sha(CONTENT) }).slice(0, -1);
          const body = Buffer.concat(raw.flatMap((name) => [Buffer.from(head), name, Buffer.from('\n')]));
          socket.write(`OK list ${body.length} ${raw.length}\n`);
          socket.write(body);
        } else if (verb === 'DOWNLOAD') {
          socket.write(`OK ${CONTENT.length} ${sha(CONTENT)}\n`);
          socket.write(CONTENT);
        }
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};

const filesUnder = async (folder: string): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(join(dir, entry.name), rel);
      else out.push(rel);
    }
  };
  await walk(folder, '');
  return out;
};

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'rxfer-get-r-'));
  await mkdir(join(base, 'deep', 'down', 'target'), { recursive: true });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

// Names from the hostile corpus that the rules refuse (a listing line cannot carry a newline).
const hostile = HOSTILE_NAMES.filter((name) => name.expect === 'invalid' && !name.bytes.includes(0x0a));

test('the corpus has enough hostile names to mean something', () => {
  expect(hostile.length).toBeGreaterThanOrEqual(200);
});

test.each(hostile.map((name) => [name.label, name] as const))('get -r refuses a listed %s and writes nothing', async (_label, name) => {
  // Listed as a whole name (get -r of the server's root): "C:" is a drive letter only at the start.
  const server = await maliciousServer(['ok.txt', name.bytes]);
  const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  try {
    const target = join(base, 'deep', 'down', 'target');
    const failure = await downloadTree(client, '', target).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(RxferError);
    expect((failure as RxferError).code).toBe('NAME_INVALID');
    // Nothing at all was written: not the good file, not the hostile one, nowhere under base.
    expect(await filesUnder(base)).toEqual([]);
  } finally {
    client.close();
    await server.close();
  }
});

test('a name outside the requested folder is refused, even a well-formed one', async () => {
  const server = await maliciousServer(['dir/ok.txt', `other/${CANARY}`]);
  const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
  try {
    const failure = await downloadTree(client, 'dir', join(base, 'out')).catch((err: unknown) => err);
    expect((failure as RxferError).code).toBe('NAME_INVALID');
    expect(await filesUnder(base)).toEqual([]);
  } finally {
    client.close();
    await server.close();
  }
});

test('fast-check: whatever names a server lists, a file lands inside the target or nothing is written', async () => {
  const target = join(base, 't');
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), async (suffix) => {
      if (/[\n]/.test(suffix)) return;
      const server = await maliciousServer([`dir/${suffix}`]);
      const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
      try {
        let path: string | undefined;
        try {
          path = localPathFor(target, 'dir', `dir/${suffix}`);
        } catch (err) {
          expect((err as RxferError).code).toBe('NAME_INVALID');
        }
        const result = await downloadTree(client, 'dir', target).catch((err: unknown) => err);
        const written = await filesUnder(base);
        if (path === undefined) {
          expect((result as RxferError).code).toBe('NAME_INVALID');
          expect(written).toEqual([]);
        } else {
          expect(written.every((file) => file.startsWith('t/'))).toBe(true);
        }
      } finally {
        client.close();
        await server.close();
        await rm(target, { recursive: true, force: true });
      }
    }),
    { numRuns: 150 },
  );
});

describe('against the real server', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    await server.close();
  });

  test('get -r of a tree with nested folders, empty files and non-ASCII names round-trips exactly', async () => {
    const files: Record<string, Buffer> = {
      'tree/a.txt': Buffer.from('a\n'),
      'tree/empty': Buffer.alloc(0),
      'tree/sub/résumé 日本.txt': Buffer.from('non-ascii\n'),
      'tree/sub/deeper/still/bin.dat': createHash('sha512').update('x').digest(),
      'elsewhere/not-me.txt': Buffer.from('outside the folder asked for\n'),
    };
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      await Promise.all(Object.entries(files).map(([name, data]) => client.uploadBuffer(name, data)));
      const listed = await client.list('tree');
      expect(listed.map((entry) => entry.name).sort()).toEqual(Object.keys(files).filter((name) => name.startsWith('tree/')).sort());
      for (const entry of listed) expect(entry.digest).toBe(sha(files[entry.name]!));
      const result = await downloadTree(client, 'tree', join(base, 'copy'));
      expect(result.files).toBe(4);
      for (const [name, data] of Object.entries(files)) {
        if (!name.startsWith('tree/')) continue;
        expect(await readFile(join(base, 'copy', name.slice('tree/'.length)))).toEqual(data);
      }
      expect((await filesUnder(join(base, 'copy'))).some((file) => file.includes('rxfer-part'))).toBe(false);
      expect(await filesUnder(join(base, 'copy'))).toHaveLength(4);
    } finally {
      await client.quit();
    }
  });

  test('put -r then get -r: a local tree with nested folders, empty files and non-ASCII names comes back identical', async () => {
    const local = join(base, 'local');
    const tree: Record<string, Buffer> = {
      'top.txt': Buffer.from('top\n'),
      'empty': Buffer.alloc(0),
      'ü/ñ 文件.txt': Buffer.from('unicode\n'),
      'x/y/z/big.bin': createHash('sha512').update('big').digest().subarray(0, 64),
    };
    for (let i = 0; i < 150; i++) tree[`many/f${i}.bin`] = Buffer.from(`file ${i}\n`);
    for (const [name, data] of Object.entries(tree)) {
      await mkdir(join(local, ...name.split('/').slice(0, -1)), { recursive: true });
      await writeFile(join(local, ...name.split('/')), data);
    }
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const sent = await uploadTree(client, local, 'backup');
      expect(sent.files).toBe(Object.keys(tree).length);
      for (const [name, data] of Object.entries(tree)) expect(await readFile(join(server.root, 'backup', ...name.split('/')))).toEqual(data);
      await downloadTree(client, 'backup', join(base, 'restored'));
      expect((await filesUnder(join(base, 'restored'))).sort()).toEqual(Object.keys(tree).sort());
      for (const [name, data] of Object.entries(tree)) expect(await readFile(join(base, 'restored', ...name.split('/')))).toEqual(data);
    } finally {
      await client.quit();
    }
  });

  test('put -r refuses a local file whose name the server would refuse, before sending anything', async () => {
    const local = join(base, 'local-bad');
    await mkdir(local, { recursive: true });
    await writeFile(join(local, 'fine.txt'), 'fine\n');
    await writeFile(join(local, 'back\\slash.txt'), 'bad\n');
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      const failure = await uploadTree(client, local, 'up').catch((err: unknown) => err);
      expect((failure as RxferError).code).toBe('NAME_INVALID');
      expect(await client.list('')).toEqual([]);
    } finally {
      await client.quit();
    }
  });

  test('LIST never shows staging files, the metadata folder or what a planted link points at', async () => {
    await mkdir(join(server.root, 'd'), { recursive: true });
    await writeFile(join(server.root, 'd', 'real.txt'), 'real\n');
    await writeFile(join(server.root, 'd', '.rxfer-part-0123456789abcdef'), 'half\n');
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret\n');
    const { symlink } = await import('node:fs/promises');
    await symlink(outside, join(server.root, 'd', 'link'));
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      expect((await client.list('')).map((entry) => entry.name)).toEqual(['d/real.txt']);
      const viaLink = await client.list('d/link').catch((err: unknown) => err);
      expect((viaLink as RxferError).code).toBe('NAME_INVALID');
    } finally {
      await client.quit();
    }
  });
});
