import { once } from 'node:events';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isUnfinishedDownloadName } from '../../src/client/staging-file';
import { spawnRxfer, spawnServe, rxfer } from '../helpers/cli';
import { CountingProxy } from '../helpers/counting-proxy';
import { filesBelow } from '../helpers/files-below';

/**
 * Ctrl-C (SIGINT) or SIGTERM during `rxfer put -r` and `rxfer get -r` (hostile pass x found that the
 * tree commands had no handler: the signal killed them where they stood, with no word said and the
 * staging files of the downloads in flight left behind). Now the command closes its connection, the
 * library fails what is in flight and removes its staging files, and it says it was interrupted,
 * exiting 130 (143). Each command is caught mid-transfer by a proxy that stops forwarding after a
 * set number of bytes, so the signal always lands while files are still on their way. Against a
 * real `rxfer serve` process.
 */

const FILES = 600;
// Guards, not timings: whole processes on a machine the rest of the suite keeps busy (CI runs two test files at once).
jest.setTimeout(120_000);
let folder: string;
let serve: Awaited<ReturnType<typeof spawnServe>>;
let proxy: CountingProxy;
let source: string;

/** Every file below `dir` with its bytes, by relative path (the server's `.rxfer` left out). */
const filesWithBytes = (dir: string): Map<string, Buffer> => new Map(filesBelow(dir).map((name) => [name, readFileSync(join(dir, name))]));

/**
 * The command, held by the proxy once `limit` bytes went `direction` and the server's replies to it
 * came to more than `answered` bytes (so that some files were stored), then sent `signal`: its exit
 * code and stderr. A command that ends before it is held fails the test, saying how.
 */
const interrupted = async (args: string[], direction: 'up' | 'down', limit: number, signal: NodeJS.Signals, answered = 0): Promise<{ code: number | null; stderr: string }> => {
  const held = proxy.holdAfterBytes(direction, limit);
  const child = spawnRxfer([...args, '-p', String(proxy.port)]);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const early = exited.then(([code]) => {
    throw new Error(`${args.join(' ')} ended (exit ${code}) before the proxy held it: ${stderr}`);
  });
  await Promise.race([held, early]);
  while (proxy.bytes.down <= answered) await Promise.race([new Promise((resolve) => setTimeout(resolve, 10)), early]);
  early.catch(() => undefined);
  child.kill(signal);
  const [code] = await exited;
  return { code, stderr };
};

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'rxfer-tree-interrupt-'));
  serve = await spawnServe(join(folder, 'root'));
  proxy = await CountingProxy.start(Number(serve.port));
  source = join(folder, 'src');
  for (let i = 0; i < FILES; i++) {
    const sub = join(source, `d${i % 6}`);
    if (i < 6) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${String(i).padStart(3, '0')}.bin`), randomBytes(1024 + ((i * 37) % 5000)));
  }
});
afterAll(async () => {
  serve.child.kill('SIGKILL');
  await proxy.close();
  rmSync(folder, { recursive: true, force: true });
});

test('put -r interrupted mid-way: exit 130, it says so; what the server has is whole; the re-run finishes and skips it', async () => {
  const { code, stderr } = await interrupted(['put', '-r', source, 'up'], 'up', 400 * 1024, 'SIGINT', 2000);
  expect(code).toBe(130);
  expect(stderr).toBe(
    `rxfer: interrupted (SIGINT), put -r ${source} → up abandoned; each file copied so far is whole, the others are as they were; run the same command again to finish (the files already there are skipped)\n`,
  );
  const wanted = filesWithBytes(source);
  const stored = filesWithBytes(join(folder, 'root', 'up'));
  // Some went, not all: the proxy held the rest.
  expect(stored.size).toBeGreaterThan(0);
  expect(stored.size).toBeLessThan(FILES);
  for (const [name, data] of stored) expect({ name, equal: data.equals(wanted.get(name) ?? Buffer.alloc(0)) }).toEqual({ name, equal: true });
  const again = await rxfer(['put', '-r', source, 'up', '-p', serve.port]);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain(`(${stored.size} already there, skipped)`);
  expect(filesWithBytes(join(folder, 'root', 'up'))).toEqual(wanted);
});

test('get -r terminated mid-way (--json): exit 143 and a JSON line; local files whole, no staging file left; the re-run finishes', async () => {
  const target = join(folder, 'out');
  const { code, stderr } = await interrupted(['get', '-r', 'up', target, '--json'], 'down', 500 * 1024, 'SIGTERM');
  expect(code).toBe(143);
  expect(JSON.parse(stderr)).toMatchObject({ code: 'INTERRUPTED', exit: 143, signal: 'SIGTERM' });
  expect(JSON.parse(stderr).message).toMatch(/^interrupted \(SIGTERM\), get -r up → .* abandoned; /);
  const wanted = filesWithBytes(source);
  const got = filesWithBytes(join(target, 'up'));
  expect(got.size).toBeGreaterThan(0);
  expect(got.size).toBeLessThan(FILES);
  // No download's staging file stays behind: each was removed when its request failed.
  expect([...got.keys()].filter((name) => isUnfinishedDownloadName(name.split('/').pop()!))).toEqual([]);
  for (const [name, data] of got) expect({ name, equal: data.equals(wanted.get(name) ?? Buffer.alloc(0)) }).toEqual({ name, equal: true });
  const again = await rxfer(['get', '-r', 'up', target, '-p', serve.port]);
  expect(again.code).toBe(0);
  expect(filesWithBytes(join(target, 'up'))).toEqual(wanted);
});

test('put (one file), SIGINT while the server has not greeted yet: 130 and it says nothing was transferred', async () => {
  // A server that accepts and never greets: the command waits in connect when the signal comes.
  const accepted: Socket[] = [];
  const silent = createServer((socket) => accepted.push(socket.on('error', () => undefined)));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  try {
    const child = spawnRxfer(['put', join(source, 'd0', 'f000.bin'), 'one.bin', '-p', String((silent.address() as AddressInfo).port)]);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit');
    while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect({ code, stderr }).toEqual({ code: 130, stderr: 'rxfer: interrupted (SIGINT), before the connection was made; nothing was transferred\n' });
  } finally {
    for (const socket of accepted) socket.destroy();
    silent.close();
  }
});
