import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { type Socket, connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashOf } from '../../src/integrity/hash-algorithm';
import { rxfer } from '../helpers/cli';
import { RawClient, batchRequest, destroyAll, downloadRequest, parseListHeader, readListAnswer, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, eventually, stagingFiles, startTestServer, userFiles } from '../helpers/server';
import { startServerProcess } from '../helpers/server-process';
import { fillTo, withTmpfs } from '../helpers/tmpfs';
import { diffSnapshots, makeUser, serverSockets, snapshot, startSecureServer } from '../security/support/server';
import { batchFakeServer } from './support/batch-fake-server';
import { startGatedServer } from './support/gated-storage';
import { linkAttackHarness, startSwapper } from './support/link-attack';

/**
 * Hostile pass of 2026-12-05 (n), against BATCH (PROTOCOL.md, "BATCH — many small files in one
 * request"): real sockets, real files, servers on 127.0.0.1; no timing is asserted (waits are guards).
 *
 * FINDING 1 (fixed: each file that waited on a failed shared creation tries on its own): one batch's files below a folder that cannot be made share one folder creation
 *   (RootPaths.folderFor's `creating` map, new with BATCH), and with it one error naming the first
 *   file. Reproduction: a file `x` exists; `BATCH 6` with `x/f0` … `x/f5` → six times
 *   `ERR NAME_CONFLICT cannot create the folder for x/f0: a file is in the way`. The reply of x/f1…x/f5
 *   names another file (of another connection too, when two share the creation), and `rxfer put -r`
 *   prints `<local>/c/x1: cannot create the folder for up/c/x0: …`.
 * FINDING 2 (fixed: an early folder check that fails so is taken again under the name's lock, which
 *   RENAME takes too; LocalFsStorage.folderForNow): a folder RENAMEd by another client while a batch stores files below it fails most
 *   of the batch with refusals that are not true: `ERR NAME_INVALID r/s/t/f is a symbolic link; rxfer
 *   does not follow links` (there is no link), `NOT FOUND r/s/t/f does not exist` (not a reply an
 *   upload can get: OK or ERR), `ERR NAME_CONFLICT cannot create the folder for …` (nothing in the
 *   way). Reproduction: connection A sends batches of 24 files `r/s<n%5>/t<i%3>/f<n>-<i>`, connection
 *   B sends `RENAME r old<n>` in a loop; in 4 s about 60 % of A's files were refused so (4,600 of
 *   7,300). Cause: createFolderFor, run by beginWrite outside any name lock, meets the rename mid-walk
 *   (a folder opened is no longer the one checked: ELOOP; gone: ENOENT; made but moved: undefined), and
 *   nothing tries again. UPLOAD has the same window (the same loop of UPLOADs: 181 of 2,712 refused),
 *   but a batch creates its files' folders side by side, all of them inside the window.
 * FINDING 3 (mitigated, not a test: see the note at its place below; the client, not caused by BATCH): `rxfer put -r` of a tree
 *   whose file is rewritten in place (same size, A… then B…) while the command runs exits 0 with the
 *   file stored as neither version: part A, part B (2 of 5 runs with one such file; the test, 5 files
 *   × 8 runs, sees it every time). Reproduction: a writer loops open/pwrite 30,000 × 'A' or 'B' at 0/
 *   close on the file; `rxfer put -r <dir> up<n>` → exit 0, `up<n>/<file>` mixed. Cause: readWhole's before/after
 *   version check (size, mtime, ctime, inode) cannot see a write that had moved the timestamps
 *   before the file was opened and was still copying its data while it was read (kernel 6.18, so not
 *   the "same clock tick" limit the README names). README: "what is stored is the file as it was at
 *   one moment".
 *
 * Held (tests below): replies in order and each true for mixes of names (same name thrice, a file then
 * a name below it, NFC/NFD, `t/`, `.`, `..`, 255-byte segments, invalid UTF-8); digests (uppercase
 * hex, size 0, a wrong digest, BLAKE3 after HASH BLAKE3, SHA-256 on a BLAKE3 connection); QUIT after
 * a BATCH header and garbage after a batch run nothing; two connections racing BATCH/UPLOAD/RENAME/
 * DELETE on one name (every DOWNLOAD's bytes are a version someone was told OK for, digests true);
 * pipelined LIST/STAT/RENAME/DOWNLOAD/DELETE around batches see exactly the requests before them;
 * SHUTTING_DOWN mid-batch completes the batch first; cuts at ~200 offsets leave no half file and no
 * staging file; quotas hold under 8 racing connections and the ledger is right afterwards; a
 * connection whose commits are held is read ≤ 4 MiB ahead; 8 connections pipelining 1,000 batches
 * each without reading do not stop a ninth; links swapped in answer the same whatever lies outside and
 * nothing outside changes; a full tmpfs: every OK is the exact file, every ERR leaves the old one;
 * put -r against a server that closes mid-batch names exactly the files it got no OK for.
 */

const KiB = 1024;
const stored = (data: Buffer | string) => `OK file data recv ${Buffer.byteLength(data)} ${sha256(data)}`;
const tally = (replies: string[], mask: RegExp): Record<string, number> =>
  replies.reduce<Record<string, number>>((counts, reply) => {
    const key = reply.replace(mask, ' <name>');
    counts[key] = (counts[key] ?? 0) + 1;
    return counts;
  }, {});

describe('BATCH on one server', () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const connect = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  test('FINDING 1: each file refused for a folder that cannot be made is told so in its own name', async () => {
    await writeFile(join(server.root, 'x'), 'a file where a folder is needed');
    const client = await connect();
    const names = Array.from({ length: 6 }, (_, i) => `x/f${i}`);
    await client.send(batchRequest(names.map((name) => ({ name, data: name }))));
    // Now: all six say "cannot create the folder for x/f0".
    expect(await client.readLines(6)).toEqual(names.map((name) => `ERR NAME_CONFLICT cannot create the folder for ${name}: a file is in the way`));
  });

  test('held: a mix of names in one batch, each answered in order and true', async () => {
    const client = await connect();
    const long = `${'x'.repeat(255)}/${'y'.repeat(255)}`;
    const files = [
      { name: 'p/q', data: '1' },
      { name: 'p', data: '2' },
      { name: 'p/q', data: '3' },
      { name: 'a', data: 'A1' },
      { name: 'a/b', data: 'AB' },
      { name: 'a', data: 'A2' },
      { name: 'caf\u00e9', data: 'nfc' },
      { name: 'cafe\u0301', data: 'nfd' },
      { name: 't/', data: 't' },
      { name: '.', data: '.' },
      { name: '..', data: '..' },
      { name: long, data: 'long' },
      { name: Buffer.from([0x61, 0xff, 0x62]), data: 'bad utf8' },
      { name: 'z'.repeat(256), data: 'segment too long' },
      { name: 'last', data: 'last' },
    ];
    await client.send(batchRequest(files));
    const replies = await client.readLines(files.length);
    expect(replies.map((reply) => reply.split(' ').slice(0, 2).join(' '))).toEqual(['OK file', 'ERR NAME_CONFLICT', 'OK file', 'OK file', 'ERR NAME_CONFLICT', 'OK file', 'OK file', ...Array(4).fill('ERR NAME_INVALID'), 'OK file', 'ERR NAME_INVALID', 'ERR NAME_INVALID', 'OK file']);
    for (const [i, file] of files.entries()) if (replies[i]!.startsWith('OK')) expect(replies[i]).toBe(stored(file.data));
    expect(await userFiles(server.root)).toEqual(['a', 'caf\u00e9', 'last', 'p/q', long]);
    expect(await readFile(join(server.root, 'p/q'), 'utf8')).toBe('3');
    expect(await readFile(join(server.root, 'a'), 'utf8')).toBe('A2');
  });

  test('held: digests (uppercase hex, size 0, a wrong one, BLAKE3 after HASH BLAKE3, SHA-256 on a BLAKE3 connection)', async () => {
    const client = await connect();
    await client.send(batchRequest([{ name: 'u', data: 'upper', sha256: sha256('upper').toUpperCase() }, { name: 'z0', data: '', sha256: sha256('x') }, { name: 'z1', data: '' }]));
    const [upper, wrongEmpty, empty] = await client.readLines(3);
    expect([upper, empty]).toEqual([stored('upper'), stored('')]);
    expect(wrongEmpty).toMatch(/^ERR CHECKSUM_MISMATCH the 0 bytes received for z0 /);
    expect(await userFiles(server.root)).toEqual(['u', 'z1']);
    await client.send('HASH BLAKE3\n');
    expect(await client.readLine()).toBe('OK hash blake3');
    const files = [{ name: 'h/a', data: randomBytes(100) }, { name: 'h/b', data: randomBytes(70 * KiB) }];
    await client.send(batchRequest([...files.map((f) => ({ ...f, entry: `${f.data.length} BLAKE3 ${hashOf('blake3', f.data).toUpperCase()}` })), { name: 'h/c', data: 'sha' }]));
    expect(await client.readLines(3)).toEqual([...files.map((f) => `OK file data recv ${f.data.length} ${hashOf('blake3', f.data)}`), expect.stringMatching(/^ERR CHECKSUM_MISMATCH the BATCH entry of h\/c gives a SHA256 digest/)]);
    const other = await connect();
    await other.send(downloadRequest('h/b'));
    expect(await other.readLine()).toBe(`OK ${70 * KiB} ${sha256(files[1]!.data)}`);
    expect((await other.readBytes(70 * KiB)).equals(files[1]!.data)).toBe(true);
  });

  test('held: QUIT right after a BATCH header, garbage after a batch: what follows is never carried out', async () => {
    const quitting = await connect();
    await quitting.send(Buffer.concat([Buffer.from('BATCH 2\nQUIT\n'), uploadRequest('after', 'x')]));
    expect(await quitting.readLine()).toMatch(/^ERR BAD_COMMAND a BATCH file starts with .* got "QUIT"$/);
    await quitting.waitClosed();
    const garbage = await connect();
    await garbage.send(Buffer.concat([batchRequest([{ name: 'g1', data: 'x' }]), Buffer.from('garbage\x00\xff\n'), uploadRequest('after2', 'x')]));
    expect(await garbage.readLines(2)).toEqual([stored('x'), expect.stringMatching(/^ERR BAD_COMMAND unknown command/)]);
    await garbage.waitClosed();
    expect(await userFiles(server.root)).toEqual(['g1']);
  });

  test('held: two connections racing BATCH, UPLOAD, RENAME and DELETE on one name: every DOWNLOAD is a version someone was told OK for', async () => {
    const [a, b] = [await connect(), await connect()];
    const bStored = new Set<string>();
    const wrong: string[] = [];
    for (let round = 0; round < 80; round++) {
      const [a1, a2, a3] = [1, 2, 3].map((k) => `A${round}-${k}-`.padEnd(40 + (k === 3 ? round % 3 : 0), 'a'));
      const [b1, b2] = [1, 2].map((k) => `B${round}-${k}-`.padEnd(40, 'b'));
      await Promise.all([
        a.send(Buffer.concat([batchRequest([{ name: 'r', data: a1! }, { name: 'r', data: a2! }, { name: 'd/r', data: a1! }, { name: 'r', data: a3! }]), downloadRequest('r')])),
        b.send(Buffer.concat([uploadRequest('r', b1!), Buffer.from(`RENAME\nr\ns${round}\n`), batchRequest([{ name: 'r', data: b2! }, { name: 'd', data: b2! }]), Buffer.from('DELETE\nd\n')])),
      ]);
      const aReplies = await a.readLines(4);
      if (aReplies[0] !== stored(a1!) || aReplies[1] !== stored(a2!) || aReplies[3] !== stored(a3!)) wrong.push(`round ${round}: ${aReplies.join(' | ')}`);
      const header = /^OK (\d+) ([0-9a-f]{64})$/.exec(await a.readLine());
      const bReplies = [await b.readUploadOutcome(), ...(await b.readLines(4))];
      if (bReplies[0] === stored(b1!)) bStored.add(b1!);
      if (bReplies[2] === stored(b2!)) bStored.add(b2!);
      if (!header) continue;
      const data = await a.readBytes(Number(header[1]));
      if (sha256(data) !== header[2]) wrong.push(`round ${round}: the DOWNLOAD's digest is not its bytes'`);
      if (data.toString() !== a3 && !bStored.has(data.toString())) wrong.push(`round ${round}: DOWNLOAD gave ${data.toString()}`);
    }
    expect(wrong).toEqual([]);
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('held: pipelined LIST, STAT, RENAME, DOWNLOAD, DELETE around batches see exactly the requests before them', async () => {
    const client = await connect();
    const list = async () => {
      const header = await client.readLine();
      return parseListHeader(header) ? `list ${(await readListAnswer(client, { header })).count}` : header;
    };
    const body = async () => {
      const header = await client.readLine();
      const m = /^OK (\d+) /.exec(header);
      return m ? (await client.readBytes(Number(m[1]))).toString('latin1') : header;
    };
    const ok = async () => ((await client.readLine()).startsWith('OK file data recv ') ? 'ok' : 'refused');
    for (let round = 0; round < 15; round++) {
      const o = `o${round}`;
      const v = (k: string) => `${k}-${round}-${'x'.repeat(round)}`;
      const big = randomBytes(70 * KiB + round);
      const many = Array.from({ length: 60 }, (_, i) => ({ name: `${o}/m/f${i}`, data: `${i}-${round}` }));
      await client.send(
        Buffer.concat([
          Buffer.from(`LIST\n${o}\n`),
          batchRequest([{ name: `${o}/x`, data: v('x1') }, { name: `${o}/d/y`, data: big }, { name: `${o}/x`, data: v('x2') }, ...many]),
          Buffer.from(`STAT\n${o}/x\nLIST\n${o}\nRENAME\n${o}/x\n${o}/z\n`),
          downloadRequest(`${o}/z`),
          downloadRequest(`${o}/d/y`),
          Buffer.from(`DELETE\n${o}/d/y\nSTAT\n${o}/d/y\n`),
          batchRequest([{ name: `${o}/x`, data: v('x3') }]),
          downloadRequest(`${o}/x`),
          Buffer.from(`RENAME\n${o}/m\n${o}/m2\n`),
          batchRequest([{ name: `${o}/m/f0`, data: 'new' }]),
          Buffer.from(`LIST\n${o}/m2\nLIST\n${o}/m\n`),
        ]),
      );
      const got = [await list()];
      for (let i = 0; i < 63; i++) got.push(await ok());
      got.push((await client.readLine()).replace(/ \d+$/, ''), await list(), await client.readLine(), await body(), (await body()) === big.toString('latin1') ? 'big' : 'not big');
      got.push(await client.readLine(), (await client.readLine()).split(' ')[0]!, await ok(), await body(), await client.readLine(), await ok(), await list(), await list());
      expect(got).toEqual(['list 0', ...Array(63).fill('ok'), `OK stat file ${v('x2').length} ${sha256(v('x2'))}`, 'list 62', 'OK renamed', v('x2'), 'big', 'OK deleted', 'NOT', 'ok', v('x3'), 'OK renamed', 'ok', 'list 60', 'list 1']);
    }
  });

  test('held: connections cut at ~200 offsets of a batch leave no half file and no staging file; the server goes on', async () => {
    const filesOf = (k: number) => [
      { name: `c${k}/zero`, data: Buffer.alloc(0) },
      { name: `c${k}/small`, data: randomBytes(100) },
      { name: `c${k}/mid`, data: randomBytes(70_000) },
      { name: `c${k}/tail`, data: randomBytes(5) },
    ];
    const length = batchRequest(filesOf(0)).length;
    const offsets = [...Array.from({ length: 133 }, (_, i) => 1 + 3 * i), ...Array.from({ length: 28 }, (_, i) => 400 + 2500 * i), ...Array.from({ length: 41 }, (_, i) => length - 40 + i)];
    const sent = [];
    for (const [k, offset] of offsets.entries()) {
      const client = await RawClient.connect(server.port);
      const files = filesOf(k);
      sent.push(...files);
      await client.send(batchRequest(files).subarray(0, offset));
      if (k % 2 === 0) await new Promise((resolve) => setImmediate(resolve));
      client.destroy();
    }
    const big = randomBytes(1024 * KiB);
    for (const missing of [0, 1, 100, 65536]) {
      const client = await RawClient.connect(server.port);
      const request = batchRequest([{ name: `big${missing}`, data: big }]);
      await client.send(request.subarray(0, request.length - missing));
      client.destroy();
      sent.push({ name: `big${missing}`, data: big });
    }
    await eventually(async () => (await stagingFiles(server.root)).length === 0, 10_000, 'no staging file left');
    for (const file of sent) {
      const there = await readFile(join(server.root, file.name)).catch(() => undefined);
      if (there !== undefined) expect({ name: file.name, exact: there.equals(file.data) }).toEqual({ name: file.name, exact: true });
    }
    const client = await connect();
    await client.send(batchRequest([{ name: 'still', data: 'x' }]));
    expect(await client.readLine()).toBe(stored('x'));
  });
});

test('held: SHUTTING_DOWN while a batch is half sent: the batch is answered first, nothing after it runs', async () => {
  const server = await startTestServer({ config: { server: { shutdownGraceMs: 10_000 } } });
  const client = await RawClient.connect(server.port);
  try {
    const files = Array.from({ length: 4 }, (_, i) => ({ name: `s/f${i}`, data: randomBytes(20_000) }));
    const request = Buffer.concat([batchRequest(files), uploadRequest('after', 'never')]);
    const cut = batchRequest(files).length - 10_000;
    await client.send(request.subarray(0, cut));
    await eventually(() => serverSockets(server.port).some((socket) => socket.bytesRead >= cut), 5000, 'the first part read');
    const stopping = server.stop();
    await client.send(request.subarray(cut));
    expect(await client.readLines(5, 15_000)).toEqual([...files.map((f) => stored(f.data)), 'ERR SHUTTING_DOWN the server is stopping; try again later']);
    await stopping;
    expect(await userFiles(server.root)).toEqual(files.map((f) => f.name));
  } finally {
    client.destroy();
    await server.close();
  }
});

/**
 * FINDING 2, for BATCH and for UPLOAD alike (the class: a folder checked and made outside the name's
 * lock, which a RENAME of a folder above takes): fixed by checking a small upload's folder only at its
 * commit, under that lock, and by checking a large one's again from the start when the check meets a
 * folder renamed away (LocalFsStorage.folderForNow).
 */
describe.each([
  ['BATCH', (files: { name: string; data: Buffer }[]) => batchRequest(files), (client: RawClient) => client.readLine(20_000)],
  ['pipelined UPLOADs', (files: { name: string; data: Buffer }[]) => Buffer.concat(files.map((f) => uploadRequest(f.name, f.data))), (client: RawClient) => client.readUploadOutcome(20_000)],
] as const)('FINDING 2 (%s)', (_label, request, outcome) => {
  test('a folder renamed by another client while files are stored below it: every file is stored, or refused truly', async () => {
    const server = await startTestServer();
    const [a, b] = [await RawClient.connect(server.port), await RawClient.connect(server.port)];
    try {
      const oks: { name: string; data: Buffer }[] = [];
      const refusals: string[] = [];
      const end = Date.now() + 1500;
      const writer = (async () => {
        for (let n = 0; Date.now() < end; n++) {
          const files = Array.from({ length: 24 }, (_, i) => ({ name: `r/s${n % 5}/t${i % 3}/f${n}-${i}`, data: randomBytes(i % 6 === 5 ? 70_000 : 50) }));
          await a.send(request(files));
          for (const file of files) {
            const reply = await outcome(a);
            if (reply === stored(file.data)) oks.push(file);
            else refusals.push(reply);
          }
        }
      })();
      const renamer = (async () => {
        for (let n = 0; Date.now() < end; n++) {
          await b.send(`RENAME\nr\nold${n}\n`);
          await b.readLine();
          await new Promise((resolve) => setTimeout(resolve, n % 3));
        }
      })();
      await Promise.all([writer, renamer]);
      // Every OK is true: the file is under r/ or under the old<n>/ it was renamed with.
      const where = new Map((await userFiles(server.root)).map((path) => [path.slice(path.indexOf('/') + 1), path]));
      for (const file of oks) {
        const path = where.get(file.name.slice(2));
        expect({ file: file.name, exact: path !== undefined && (await readFile(join(server.root, path))).equals(file.data) }).toEqual({ file: file.name, exact: true });
      }
      expect(await stagingFiles(server.root)).toEqual([]);
      // Before the fix (4 s, BATCH): {"NOT FOUND <name> does not exist": 3136, "ERR NAME_INVALID <name> is a
      // symbolic link; …": 600, "ERR NAME_CONFLICT cannot create the folder for <name>": 920}, of 7,272 files.
      expect(tally(refusals, / r\/\S+/)).toEqual({});
      expect(oks.length).toBeGreaterThan(0);
    } finally {
      destroyAll([a, b]);
      await server.close();
    }
  }, 30_000);
});

test('held: a quota under 8 connections racing batches: never over it, and the ledger right afterwards', async () => {
  const QUOTA = 1_000_000;
  const user = await makeUser('q', 'write', 'q', QUOTA);
  const server = await startSecureServer({ auth: { users: [user.entry] } });
  const clients: RawClient[] = [];
  try {
    for (let w = 0; w < 8; w++) {
      const client = await RawClient.connect(server.port);
      clients.push(client);
      await client.send(`AUTH ${user.token}\n`);
      expect(await client.readLine()).toBe('OK auth q write');
    }
    const onDisk = async () => {
      const names = await readdir(join(server.root, 'q')).catch(() => [] as string[]);
      return (await Promise.all(names.map(async (name) => (await stat(join(server.root, 'q', name))).size))).reduce((sum, size) => sum + size, 0);
    };
    const sizes = [40_000, 70_000, 10_000, 100_000];
    for (let round = 0; round < 6; round++) {
      const batches = clients.map((_, w) => Array.from({ length: 8 }, (_, i) => ({ name: i % 2 ? `shared${i % 4}` : `w${w}-f${i}`, data: randomBytes(sizes[(i + w + round) % 4]!) })));
      await Promise.all(clients.map((client, w) => client.send(batchRequest(batches[w]!))));
      const replies = await Promise.all(clients.map((client) => client.readLines(8, 20_000)));
      for (const [w, lines] of replies.entries()) for (const [i, reply] of lines.entries()) expect([stored(batches[w]![i]!.data), 'QUOTA']).toContain(reply.startsWith('ERR QUOTA_EXCEEDED ') ? 'QUOTA' : reply);
      expect(await onDisk()).toBeLessThanOrEqual(QUOTA);
    }
    const names = await readdir(join(server.root, 'q'));
    await clients[0]!.send(names.map((name) => `DELETE\n${name}\n`).join(''));
    expect(await clients[0]!.readLines(names.length)).toEqual(names.map(() => 'OK deleted'));
    const fit = Array.from({ length: 25 }, (_, i) => ({ name: `fit${i}`, data: randomBytes(40_000) }));
    await clients[0]!.send(batchRequest(fit));
    expect(await clients[0]!.readLines(25, 20_000)).toEqual(fit.map((f) => stored(f.data)));
  } finally {
    destroyAll(clients);
    await server.close();
  }
}, 30_000);

test('held: with commits held, a connection pipelining batches is read at most 4 MiB (and a buffer) ahead', async () => {
  const user = await makeUser('m', 'write', 'm');
  const { server, storage } = await startGatedServer(user);
  const gate = storage.holdName('m/d');
  const socket = tcp({ host: '127.0.0.1', port: server.port });
  try {
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`AUTH ${user.token}\n`);
    const one = batchRequest(Array.from({ length: 64 }, (_, i) => ({ name: `d/f${i}`, data: randomBytes(16 * KiB) })));
    // 40 MiB offered, as fast as the socket takes them (never awaited: the server stops reading).
    for (let b = 0; b < 40; b++) socket.write(one);
    const read = () => serverSockets(server.port).reduce((sum, s) => sum + s.bytesRead, 0);
    // Until the server has read its first MiB and then nothing for half a second (a guard of 8 s).
    let last = -1;
    for (let i = 0, still = 0; i < 80 && (still < 5 || last < 1024 * KiB); i++) {
      still = read() === last ? still + 1 : 0;
      last = read();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(read()).toBeGreaterThan(1024 * KiB);
    expect(read()).toBeLessThanOrEqual(4 * 1024 * KiB + 512 * KiB);
  } finally {
    gate.open();
    socket.destroy();
    await server.close();
  }
});

test('held: 8 connections each pipelining 1,000 batches in one write, never reading: a ninth is served, memory stays bounded', async () => {
  const disk = await withTmpfs(256 * 1024 * KiB);
  if (!disk.canMount) return console.warn(`skipped: ${disk.reason}`);
  const config = join(disk.dir, 'config.json');
  await writeFile(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0, maxConnections: 100, maxConnectionsPerIp: 100 }, storage: { kind: 'local', root: join(disk.dir, 'root') }, auth: { anonymous: 'write' }, log: { level: 'info' } }));
  const proc = await startServerProcess(config, 10_000);
  const sockets: Socket[] = [];
  const probe = await RawClient.connect(proc.port);
  try {
    const rssMiB = async () => Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${proc.pid}/status`, 'utf8'))?.[1]) / 1024;
    const base = await rssMiB();
    let peak = base;
    const sampler = setInterval(() => void rssMiB().then((rss) => (peak = Math.max(peak, rss)), () => undefined), 25);
    for (let k = 0; k < 8; k++) {
      const socket = tcp({ host: '127.0.0.1', port: proc.port });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.pause();
      await new Promise((resolve) => socket.once('connect', resolve));
      const one = batchRequest(Array.from({ length: 64 }, (_, i) => ({ name: `t${k}/f${i}`, data: 'x'.repeat(i) })));
      socket.write(Buffer.concat(Array.from({ length: 1000 }, () => one)));
    }
    await probe.send(batchRequest([{ name: 'probe', data: 'p' }]));
    expect(await probe.readLine(20_000)).toBe(stored('p'));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await probe.send('STAT\nprobe\n');
    expect(await probe.readLine(20_000)).toMatch(/^OK stat file 1 /);
    clearInterval(sampler);
    // Issue 16's bound for a server under hostile connections (measured here: +131 MiB).
    expect(peak - base).toBeLessThan(256);
  } finally {
    for (const socket of sockets) socket.destroy();
    probe.destroy();
    proc.proc.kill('SIGKILL');
    await proc.exited();
    await disk.cleanup();
  }
}, 45_000);

describe('BATCH against links', () => {
  const { serve, connect } = linkAttackHarness();

  test.each([[undefined], [500_000]])('held: files below a folder swapped for a link after its check answer the same whatever lies outside (quota %s)', async (quota) => {
    const user = await makeUser('u', 'write', 'u', quota);
    const server = await serve([user]);
    const outside = server.sentinel;
    await mkdir(join(outside, 'with-x', 'b'), { recursive: true });
    await writeFile(join(outside, 'with-x', 'x'), 'x outside');
    await mkdir(join(outside, 'a-folder'));
    const d = join(server.realRoot, 'u', 'd');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'first'), 'first');
    const before = await snapshot(outside);
    const client = await connect(server.port, user.token);
    const replies: Record<string, string[]> = {};
    for (const [kind, target] of Object.entries({ folder: join(outside, 'with-x'), empty: join(outside, 'a-folder'), file: join(outside, 'secret.txt'), nothing: join(outside, 'nothing') })) {
      await client.send('STAT\nd/first\n');
      expect(await client.readLine()).toMatch(/^OK stat file /);
      await rename(d, `${d}.parked`);
      await symlink(target, d);
      await client.send(batchRequest([{ name: 'd/x', data: 'probe' }, { name: 'd/y', data: Buffer.alloc(100 * KiB, 1) }, { name: 'd/b/x', data: 'p' }, { name: 'd/sub/new', data: 'q' }]));
      replies[kind] = await client.readLines(4, 20_000);
      await unlink(d);
      await rename(`${d}.parked`, d);
    }
    for (const reply of replies.nothing!) expect(reply).toMatch(/^ERR NAME_INVALID /);
    // A link on the way may be met by the folder check (its real path leads outside) or, with that
    // check remembered for a second, by the commit's open of the folder (now a link): which one depends
    // on timing alone (seen in CI once the commit's staging open became synchronous, 2026-12-06). Both
    // say it in the same words (storage-errors.ts, a marked ELOOP), so the replies match word for word.
    expect(replies).toEqual({ folder: replies.nothing, empty: replies.nothing, file: replies.nothing, nothing: replies.nothing });
    for (const reply of replies.nothing!) expect(reply).not.toContain('is a symbolic link');
    expect(diffSnapshots(before, await snapshot(outside))).toEqual([]);
    expect(await readdir(d)).toEqual(['first']);
  });

  test('held: batches while a local user swaps the folder for a link and back: nothing lands outside', async () => {
    const server = await serve();
    await mkdir(join(server.sentinel, 'out'));
    const d = join(server.realRoot, 'd');
    await mkdir(d);
    const before = await snapshot(server.sentinel);
    const client = await connect(server.port);
    const swapper = startSwapper(d, join(server.sentinel, 'out'), 2000);
    const replies: string[] = [];
    for (let n = 0; swapper.child.exitCode === null && n < 2000; n++) {
      const files = Array.from({ length: 16 }, (_, i) => ({ name: i % 2 ? `d/n${n}/f${i}` : `d/f${n}-${i}`, data: i % 4 === 3 ? Buffer.alloc(70_000, i) : `v${n}-${i}` }));
      await client.send(batchRequest(files));
      replies.push(...(await client.readLines(16, 20_000)));
    }
    expect(await swapper.done).toBeGreaterThan(0);
    expect(replies.filter((reply) => reply.includes(server.sentinel) || reply.includes(server.realRoot))).toEqual([]);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  }, 30_000);
});

test('held: batches filling a tmpfs: every OK is the exact file, every ERR leaves what was there', async () => {
  const disk = await withTmpfs(6 * 1024 * KiB);
  if (!disk.canMount) return console.warn(`skipped: ${disk.reason}`);
  const root = join(disk.dir, 'root');
  await mkdir(root);
  const server = await startTestServer({ config: { storage: { root } } });
  const clients = [await RawClient.connect(server.port), await RawClient.connect(server.port)];
  try {
    const sizes = [0, 10, 4000, 60_000, 70_000, 200_000, 1024 * KiB];
    const expected = new Map<string, Buffer | undefined>();
    const codes = new Set<string>();
    await fillTo(disk.dir, 1_500_000);
    for (let round = 0; round < 8; round++) {
      const batches = clients.map((_, w) => {
        const files: { name: string; data: Buffer }[] = [];
        let total = 0;
        for (let i = 0; total < 900_000 && i < 20; i++) {
          const size = sizes[(i * 3 + round + w) % sizes.length]!;
          if (total + size > 1024 * KiB) continue;
          total += size;
          files.push({ name: `w${w}/${i % 3 === 0 ? `same${i % 2}` : `r${round}/f${i}`}`, data: randomBytes(size) });
        }
        return files;
      });
      await Promise.all(clients.map((client, w) => client.send(batchRequest(batches[w]!))));
      const replies = await Promise.all(clients.map((client, w) => client.readLines(batches[w]!.length, 20_000)));
      for (const [w, lines] of replies.entries()) {
        for (const [i, reply] of lines.entries()) {
          const file = batches[w]![i]!;
          codes.add(reply.startsWith('OK') ? 'OK' : reply.split(' ').slice(0, 2).join(' '));
          if (reply.startsWith('OK')) expect(reply).toBe(stored(file.data));
          if (reply.startsWith('OK')) expected.set(file.name, file.data);
          else if (!expected.has(file.name)) expected.set(file.name, undefined);
        }
      }
      for (const [name, data] of expected) {
        const there = await readFile(join(root, name)).catch(() => undefined);
        expect({ name, exact: data === undefined ? there === undefined : there?.equals(data) === true }).toEqual({ name, exact: true });
      }
    }
    expect([...codes].sort()).toEqual(['ERR NO_SPACE', 'OK']);
    expect(await stagingFiles(root)).toEqual([]);
  } finally {
    destroyAll(clients);
    await server.close();
    await disk.cleanup();
  }
}, 45_000);

describe('rxfer put -r with BATCH', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-hostile-n-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test.each([[5, 'end'], [70, 'shutdown']] as const)('held: a server that stops after %d files (%s): the files named as not stored are exactly those without an OK', async (okFiles, then) => {
    const fake = await batchFakeServer(okFiles, then);
    try {
      for (let i = 0; i < 150; i++) {
        await mkdir(join(dir, `d${i % 3}`), { recursive: true });
        await writeFile(join(dir, `d${i % 3}`, `f${String(i).padStart(3, '0')}`), randomBytes(i * 37));
      }
      const run = await rxfer(['put', '-r', dir, 'up', '-p', String(fake.port)]);
      expect(fake.answered).toHaveLength(okFiles);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`${150 - okFiles} of 150 files were not stored: `);
      const named = [...run.stderr.matchAll(new RegExp(`${dir}/(d\\d/f\\d+)`, 'g'))].map((m) => `up/${m[1]}`);
      expect(named.length).toBeGreaterThan(0);
      for (const name of named) expect(fake.answered).not.toContain(name);
    } finally {
      await fake.close();
    }
  });

  test('FINDING 1 (CLI): put -r names, for each file it could not store, the reason of another file', async () => {
    const server = await startTestServer({ config: { limits: { maxFileBytes: 3000 } } });
    try {
      await mkdir(join(server.root, 'up'));
      await writeFile(join(server.root, 'up', 'c'), 'a file where the tree has a folder');
      await mkdir(join(dir, 'c'));
      await mkdir(join(dir, 'ok'));
      for (let i = 0; i < 40; i++) await writeFile(join(dir, 'ok', `f${i}`), randomBytes(i * 100));
      for (let i = 0; i < 5; i++) await writeFile(join(dir, 'c', `x${i}`), randomBytes(10));
      const run = await rxfer(['put', '-r', dir, 'up', '-p', String(server.port)]);
      expect(run.code).toBe(1);
      // 5 below the file c, 9 over maxFileBytes (ok/f31 … ok/f39); the 31 others are stored.
      expect(run.stderr).toContain('14 of 45 files were not stored: ');
      expect((await userFiles(server.root)).filter((name) => name.startsWith('up/ok/'))).toHaveLength(31);
      // Now: "<dir>/c/x1: cannot create the folder for up/c/x0: a file is in the way".
      for (const i of [0, 1, 2]) expect(run.stderr).toContain(`${dir}/c/x${i}: cannot create the folder for up/c/x${i}: a file is in the way`);
    } finally {
      await server.close();
    }
  });

  // FINDING 3 (the client, not BATCH's doing): a file rewritten in place while put -r read it was
  // stored as a mix of two versions, exit 0 (a read inside a writer's copy, under unchanged times).
  // Mitigated in readWhole (a file changed in the last 2 s is read twice, sent only if both agree);
  // not made a test here: with the writer stalled mid-copy on a loaded machine both reads agree on
  // the mix, so a test of it would pass or fail with the machine's load. README: the limit.
});
