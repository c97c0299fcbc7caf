import { type ChildProcess, spawn } from 'node:child_process';
import { realpath, rename, symlink, unlink } from 'node:fs/promises';
import { RawClient, destroyAll, uploadRequest } from '../../helpers/raw-client';
import { type SecureServer, type TestUser, startSecureServer } from '../../security/support/server';

/**
 * What the hostile passes on links (k, l, m: test/regressions/hostile-2026-12-05[klm]-*.test.ts)
 * share: a server with a watched folder outside its root, raw clients, requests whose whole reply is
 * read as one line, and a folder swapped for a link by renames, as a local user with access to the
 * storage would.
 */

/** Every reply line waits at most this long. */
export const GUARD_MS = 20_000;

/** One request and how its reply is read: an upload's two lines, a download's or listing's body. */
export interface Probe {
  readonly kind: 'upload' | 'download' | 'list' | 'line';
  readonly bytes: Buffer;
}
export const line = (text: string): Probe => ({ kind: 'line', bytes: Buffer.from(text) });
export const listing = (text: string): Probe => ({ kind: 'list', bytes: Buffer.from(text) });
export const download = (text: string): Probe => ({ kind: 'download', bytes: Buffer.from(text) });
export const upload = (name: string, body: Buffer | string, verb: 'UPLOAD' | 'ADDFILE' = 'UPLOAD'): Probe => ({ kind: 'upload', bytes: uploadRequest(name, body, { verb }) });

/**
 * The whole reply to `probe` as one line: an upload's header and final reply as `OK file recv | <final>`
 * (a refusal at the header is just its ERR: what a client learns from the header is kept); a
 * download's or listing's body is read and dropped.
 */
export const readReply = async (client: RawClient, probe: Probe): Promise<string> => {
  const first = await client.readLine(GUARD_MS);
  if (probe.kind === 'upload') return first === 'OK file recv' ? `${first} | ${await client.readLine(GUARD_MS)}` : first;
  const body = probe.kind === 'download' ? /^OK (\d+) /.exec(first) : probe.kind === 'list' ? /^OK list (\d+) /.exec(first) : null;
  // A resumed download sends what follows its offset (`OK <size> <sha256> from <offset>`).
  const from = probe.kind === 'download' ? / from (\d+)$/.exec(first) : null;
  if (body) await client.readBytes(Number(body[1]) - Number(from?.[1] ?? 0), GUARD_MS);
  return first;
};

/** Sends `probe` and reads its whole reply (readReply). */
export const ask = async (client: RawClient, probe: Probe): Promise<string> => {
  await client.send(probe.bytes);
  return readReply(client, probe);
};

/** A reply with `name` replaced, so that replies for different names can be compared. */
export const withoutName = (reply: string, name: string): string => reply.split(name).join('<name>');

/**
 * `folder` (a real folder) parked beside itself as `<folder>.parked`, a link to `target` in its place,
 * by renames; `undo` puts the real one back.
 */
export const swapForLink = async (folder: string, target: string): Promise<() => Promise<void>> => {
  await rename(folder, `${folder}.parked`);
  await symlink(target, folder);
  return async () => {
    await unlink(folder);
    await rename(`${folder}.parked`, folder);
  };
};

/**
 * Servers and clients for the tests of one describe block, all gone after each test (call it in the
 * describe's body: it registers the afterEach). `serve`: a secure server (storage root + a watched
 * sentinel folder outside it), with `users` if any, and the root's real path. `connect`: a raw client,
 * authenticated with `token` if given. `cleanups`: more to undo after each test, last first.
 */
export const linkAttackHarness = () => {
  const clients: RawClient[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    destroyAll(clients);
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const serve = async (users: TestUser[] = []): Promise<SecureServer & { realRoot: string }> => {
    const server = await startSecureServer(users.length > 0 ? { auth: { users: users.map((user) => user.entry) } } : {});
    cleanups.push(() => server.close());
    return { ...server, realRoot: await realpath(server.root) };
  };
  const connect = async (port: number, token?: string): Promise<RawClient> => {
    const client = await RawClient.connect(port);
    clients.push(client);
    if (token) {
      await client.send(`AUTH ${token}\n`);
      expect(await client.readLine()).toMatch(/^OK auth /);
    }
    return client;
  };
  return { serve, connect, cleanups };
};

/**
 * The hostile local user: for MS ms, swaps DIR for a link to TARGET and back (the real folder parked
 * beside it as DIR.parked meanwhile), by renames only, never deleting anything: a folder the server
 * made again at DIR while the real one was away is moved to DIR.stray-<n>. Leaves DIR a real folder.
 */
const SWAPPER = String.raw`
const fs = require('fs');
const dir = process.env.DIR, target = process.env.TARGET, end = Date.now() + Number(process.env.MS);
const parked = dir + '.parked', link = dir + '.link';
let strays = 0, swaps = 0;
const stray = () => dir + '.stray-' + strays++;
const cell = new Int32Array(new SharedArrayBuffer(4));
const pause = () => { const r = Math.random(); if (r < 0.4) return; Atomics.wait(cell, 0, 0, r < 0.8 ? 1 : 3); };
const isLink = (p) => { try { return fs.lstatSync(p).isSymbolicLink(); } catch { return false; } };
const exists = (p) => { try { fs.lstatSync(p); return true; } catch { return false; } };
try { fs.unlinkSync(link); } catch {}
fs.symlinkSync(target, link);
while (Date.now() < end) {
  try {
    fs.renameSync(dir, parked);
    try { fs.renameSync(link, dir); } catch { fs.renameSync(dir, stray()); fs.renameSync(link, dir); }
    swaps++;
    pause();
    fs.renameSync(dir, link);
    try { fs.renameSync(parked, dir); } catch { fs.renameSync(dir, stray()); fs.renameSync(parked, dir); }
    pause();
  } catch (e) {
    // Back to a known state: the link aside, the real folder in place.
    if (isLink(dir)) fs.renameSync(dir, link);
    if (exists(parked)) { if (exists(dir)) fs.renameSync(dir, stray()); fs.renameSync(parked, dir); }
  }
}
if (isLink(dir)) fs.unlinkSync(dir);
if (exists(parked)) { if (exists(dir)) fs.renameSync(dir, stray()); fs.renameSync(parked, dir); }
try { fs.unlinkSync(link); } catch {}
process.stdout.write(String(swaps));
`;

export interface Swapper {
  readonly child: ChildProcess;
  /** The number of swaps made, once it is done. */
  readonly done: Promise<number>;
}

export const startSwapper = (dir: string, target: string, ms: number): Swapper => {
  const child = spawn(process.execPath, ['-e', SWAPPER], { env: { ...process.env, DIR: dir, TARGET: target, MS: String(ms) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const done = new Promise<number>((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(Number(out)) : reject(new Error(`swapper exited ${code}: ${err}`)))),
  );
  return { child, done };
};
