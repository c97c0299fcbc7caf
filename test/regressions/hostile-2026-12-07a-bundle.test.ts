import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, MAIN, PROJECT, cliEnv, ensureBuilt, spawnServe } from '../helpers/cli';
import { CountingProxy } from '../helpers/counting-proxy';

/**
 * Hostile pass of 2026-12-07 (a) on commit d6d8043: client commands run from one esbuild bundle
 * (dist/cli/client-bundle.js), `serve` and `token` from dist/cli/main.js, and bin/rxfer.js picks the
 * entry from the words on the line (and, in a checkout, the bundle's mtime against what it was made from).
 *
 * Every command here is run twice, with the same environment and against the same kind of real
 * `rxfer serve` on 127.0.0.1: through bin/rxfer.js (the bundle) and as `node dist/cli/main.js` (the
 * modules tsc wrote), and exit code, stdout and stderr must be equal (only ports, temporary paths,
 * dates and durations normalised). Which entry ran is read from NODE_DEBUG=module.
 *
 * Held (asserted below): usage errors (exit 2, text and --json), NOT_FOUND, EXISTS, AUTH_FAILED,
 * AUTH_REQUIRED, connection refused, --tls against a plain server, a server that never greets,
 * local file missing, a folder without -r, put/get/add/ls/stat/rm/mv/mkdir, put -r/get -r, --json
 * variants, get to stdout, SIGINT during an upload held by a proxy: all identical. The entry for
 * `--`, `-- serve`, `put --token=serve`, `put serve dest`, `--help token`, `-H serve`, `help serve`,
 * a symlinked .bin/rxfer run from another folder, a dangling symlink in place of the bundle.
 *
 * Found, and mended (bin/rxfer.js, scripts/bundle-cli.js):
 *  - In a checkout, a compile that rewrites only the changed files (`tsc --incremental`, `tsc -w`,
 *    `tsc -b`) left dist/cli/main.js older than the bundle: bin/rxfer.js ran the stale bundle, not the
 *    code just compiled (only main.js's mtime was compared). The bundler now lists the files it was
 *    made from beside the bundle (client-bundle.json), and in a checkout none may be newer.
 *  - dist/cli/client-bundle.js that is a folder was "present" to statSync: bin/rxfer.js required it
 *    and crashed with MODULE_NOT_FOUND and a stack trace. Only a regular file is a bundle now.
 */
jest.setTimeout(60_000);

interface Ran {
  readonly code: number | string | null;
  readonly stdout: string;
  readonly stderr: string;
}

const run = (entry: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(process.execPath, [entry, ...args], { cwd: options.cwd ?? base, env: cliEnv(options.env), timeout: 30_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (e.code ?? e.signal ?? null) : 0, stdout, stderr });
    });
  });

/** The dist/cli entries a run loaded, in order (Node's own module log), with its exit code and stdout. */
const entriesOf = (command: string, args: string[], options: { cwd?: string; viaNode?: boolean } = {}): Promise<{ entries: string[]; code: number | string | null; stdout: string }> =>
  new Promise((resolve) => {
    const [file, argv] = options.viaNode === false ? [command, args] : [process.execPath, [command, ...args]];
    execFile(file, argv, { cwd: options.cwd ?? base, env: cliEnv({ NODE_DEBUG: 'module' }), timeout: 30_000 }, (err, stdout, stderr) => {
      const entries = [...stderr.matchAll(/load "[^"]*\/dist\/cli\/(client-bundle|main)\.js" for module/g)].map((m) => m[1]!);
      const e = err as (Error & { code?: number | string }) | null;
      resolve({ entries, code: e ? (e.code ?? null) : 0, stdout });
    });
  });

let base: string;
let port: string;
let authPort: string;
let silentPort: string;
let token: string;
const children: ChildProcess[] = [];
const closers: (() => Promise<void> | void)[] = [];

const track = <T extends { child: ChildProcess }>(started: T): T => {
  children.push(started.child);
  return started;
};

beforeAll(async () => {
  ensureBuilt();
  base = mkdtempSync(join(tmpdir(), 'rxfer-h07a-'));
  mkdirSync(join(base, 'root'));
  mkdirSync(join(base, 'auth-root'));
  mkdirSync(join(base, 'tree', 'sub'), { recursive: true });
  writeFileSync(join(base, 'a.txt'), 'hello\n');
  writeFileSync(join(base, 'tree', 'x'), 'x');
  port = track(await spawnServe(join(base, 'root'))).port;

  const made = await run(MAIN, ['token', '--user', 'alice', '--json']);
  const parsed = JSON.parse(made.stdout) as { token: string; user: unknown };
  token = parsed.token;
  writeFileSync(join(base, 'auth.json'), JSON.stringify({ auth: { users: [parsed.user] } }));
  const auth = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--root', join(base, 'auth-root'), '--config', join(base, 'auth.json')], { env: cliEnv() });
  children.push(auth);
  authPort = await new Promise<string>((resolve, reject) => {
    let out = '';
    auth.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    auth.once('exit', () => reject(new Error(`serve exited early: ${out}`)));
  });

  // Accepts and never greets.
  const sockets = new Set<Socket>();
  const silent: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silentPort = String((silent.address() as { port: number }).port);
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });
}, 180_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const close of closers.reverse()) await close();
  rmSync(base, { recursive: true, force: true });
});

const fill = (args: string[]): string[] =>
  args.map((a) => a.replace('$AUTH', authPort).replace('$SILENT', silentPort).replace('$P', port).replace('$B', base).replace('$TOKEN', token));

/** Commands that change nothing on the server (or fail before they could): run both ways against it. */
const STATELESS: string[][] = [
  ['--version'],
  ['--help'],
  ['--'],
  ['help'],
  ['help', 'put'],
  ['put', '--help'],
  ['get', '--help'],
  ['ls', '--help'],
  ['rm', '--help'],
  ['nosuch'],
  ['serv'],
  ['SERVE'],
  ['put'],
  ['get'],
  ['--json', 'put'],
  ['put', '-p', 'abc', 'x'],
  ['put', '-p', 'abc', 'x', '--json'],
  ['ls', '-H', '[::1', '-p', '$P'],
  ['ls', '-H', 'h:1', '-p', '2'],
  ['ls', '-H', 'h:1', '-p', '2', '--json'],
  ['put', 'a.txt', '--hash', 'bogus'],
  ['ls', '--connect-timeout', '0'],
  ['put', '$B/a.txt', 'a.txt', '-p', '$P'],
  ['put', '$B/a.txt', 'a.txt', '-p', '$P', '--json'],
  ['put', '$B/missing', '-p', '$P'],
  ['put', '$B/missing', '-p', '$P', '--json'],
  ['put', '$B/tree', '-p', '$P'],
  ['put', '-r', '$B/missing', '-p', '$P', '--json'],
  ['get', 'nope', '$B/out', '-p', '$P'],
  ['get', 'nope', '$B/out', '-p', '$P', '--json'],
  ['get', '-r', 'nope', '$B/out', '-p', '$P', '--json'],
  ['stat', 'nope', '-p', '$P'],
  ['stat', 'nope', '-p', '$P', '--json'],
  ['rm', 'nope', '-p', '$P'],
  ['rm', 'nope', '-f', '-p', '$P'],
  ['mv', 'a', 'b', 'c', '-p', '$P'],
  ['ls', 'nope', '-p', '$P', '--json'],
  ['ls', '-p', '1'],
  ['ls', '-p', '1', '--json'],
  ['put', '--token=serve', '$B/a.txt', 'x', '-p', '1'],
  ['put', 'serve', 'dest', '-p', '1'],
  ['ls', '-H', 'serve.invalid', '-p', '1'],
  ['ls', '-p', '$P', '--tls'],
  ['ls', '-p', '$P', '--tls', '--json'],
  ['ls', '-p', '$SILENT', '--connect-timeout', '0.3'],
  ['ls', '-p', '$SILENT', '--connect-timeout', '0.3', '--tls', '--json'],
  ['ls', '-p', '$AUTH'],
  ['ls', '-p', '$AUTH', '--json'],
  ['ls', '-p', '$AUTH', '--token', 'alice.wrong'],
  ['ls', '-p', '$AUTH', '--token', 'nobody'],
  ['ls', '-p', '$AUTH', '--token', '$TOKEN', '--json'],
  ['put', '$B/a.txt', 'z.txt', '-p', '$AUTH', '--token', 'alice.wrong', '--json'],
];

test.each(STATELESS.map((args) => [args.join(' '), args]))('bundled and unbundled say the same: rxfer %s', async (_label, args) => {
  const argv = fill(args as string[]);
  const bundled = await run(BIN, argv);
  const unbundled = await run(MAIN, argv);
  expect(bundled).toEqual(unbundled);
  // A crash of either (a stack trace) would be "equal" only if both crashed: neither may.
  expect(bundled.stderr).not.toMatch(/\n\s+at /);
});

const normalise = (text: string, world: string, serverPort: string): string =>
  text
    .split(world)
    .join('<W>')
    .split(serverPort)
    .join('<P>')
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, '<DATE>')
    .replace(/"mtimeMs":[0-9.]+/g, '"mtimeMs":<M>')
    .replace(/[0-9.]+ ?(ms|s)\b/g, '<T>')
    .replace(/[0-9.]+ ?[KMG]?i?B\/s/g, '<RATE>');

/** A sequence that changes the server, run in two fresh worlds (server and local folder each). */
const SEQUENCE: string[][] = [
  ['put', 'a.txt'],
  ['put', 'a.txt', '--json'],
  ['put', '-r', 'tree'],
  ['put', '-r', 'tree', '--json'],
  ['ls'],
  ['ls', '-r', '--json'],
  ['stat', 'a.txt'],
  ['stat', 'tree', '--json'],
  ['add', 'a.txt'],
  ['add', 'a.txt', '--json'],
  ['get', 'a.txt', 'out/'],
  ['get', 'a.txt', 'out/', '--json', '--no-skip-existing'],
  ['get', '-r', 'tree', 'out'],
  ['get', '-r', 'tree', 'out', '--json'],
  ['get', 'a.txt', '-'],
  ['get', 'tree', 'out/'],
  ['mv', 'a.txt', 'b.txt'],
  ['mv', 'b.txt', 'tree/', '--json'],
  ['rm', 'tree'],
  ['rm', '-r', 'tree', '--json'],
  ['mkdir', 'm/n'],
  ['put', '-r', 'out', '--no-skip-existing'],
  ['ls', '-r'],
];

test('a sequence of transfers and file operations: same exit codes and output, same files', async () => {
  const outputs: Record<string, string[]> = {};
  const files: Record<string, string> = {};
  for (const [label, entry] of [
    ['bundled', BIN],
    ['unbundled', MAIN],
  ] as const) {
    const world = join(base, `world-${label}`);
    mkdirSync(join(world, 'root'), { recursive: true });
    mkdirSync(join(world, 'local', 'tree', 'sub'), { recursive: true });
    mkdirSync(join(world, 'local', 'out'));
    writeFileSync(join(world, 'local', 'a.txt'), 'hello\n');
    writeFileSync(join(world, 'local', 'tree', 'x'), 'x');
    writeFileSync(join(world, 'local', 'tree', 'sub', 'y'), 'yy');
    const server = track(await spawnServe(join(world, 'root')));
    const lines: string[] = [];
    for (const args of SEQUENCE) {
      const r = await run(entry, [...args, '-p', server.port], { cwd: join(world, 'local'), env: { RXFER_CACHE_DIR: join(world, 'cache') } });
      lines.push(`${args.join(' ')} -> ${r.code}\n${normalise(r.stdout, world, server.port)}\n${normalise(r.stderr, world, server.port)}`);
    }
    server.child.kill('SIGTERM');
    outputs[label] = lines;
    files[label] = ['out/a.txt', 'out/tree/x', 'out/tree/sub/y'].map((f) => readFileSync(join(world, 'local', f), 'utf8')).join('|');
  }
  expect(outputs['bundled']).toEqual(outputs['unbundled']);
  expect(files['bundled']).toBe('hello\n|x|yy');
  expect(files['unbundled']).toBe('hello\n|x|yy');
});

test('SIGINT during an upload held by a proxy: the same exit code and line, bundled or not', async () => {
  const big = join(base, 'big.bin');
  writeFileSync(big, Buffer.alloc(8 * 1024 * 1024, 7));
  const proxy = await CountingProxy.start(Number(port));
  closers.push(() => proxy.close());
  const results: Ran[] = [];
  for (const [i, entry] of [BIN, MAIN].entries()) {
    for (const json of [false, true]) {
      const held = proxy.holdAfterBytes('up', 256 * 1024);
      const child = spawn(process.execPath, [entry, 'put', big, `held-${i}-${json}.bin`, '-p', String(proxy.port), ...(json ? ['--json'] : [])], { cwd: base, env: cliEnv() });
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
      await held;
      child.kill('SIGINT');
      const code = await exited;
      results.push({ code, stdout, stderr: stderr.replace(/held-\d/g, 'held-N') });
    }
  }
  expect(results[0]).toEqual(results[2]);
  expect(results[1]).toEqual(results[3]);
  expect(results[0]!.code).toBe(130);
  expect(results[0]!.stdout).toBe('');
  expect(results[0]!.stderr).toMatch(/^rxfer: interrupted \(SIGINT\), /);
});

test('the entry each form of the line runs, and that the command still works from it', async () => {
  const cases: [string[], string, number][] = [
    [['--version'], 'client-bundle', 0],
    [['--'], 'client-bundle', 2],
    [['--help'], 'client-bundle', 0],
    [['help'], 'client-bundle', 0],
    [['serv'], 'client-bundle', 2],
    [['put', '--token=serve', 'a.txt', 'x', '-p', '1'], 'client-bundle', 1],
    [['ls', '--host=serve', '-p', '1'], 'client-bundle', 1],
    [['put', 'serve', 'dest', '-p', '1'], 'main', 1],
    [['ls', '-H', 'serve', '-p', '1'], 'main', 1],
    [['--help', 'token'], 'main', 0],
    [['help', 'serve'], 'main', 0],
    [['serve', '--help'], 'main', 0],
    [['token', '--help'], 'main', 0],
    [['ls', '--', 'serve', '-p', '1'], 'main', 2],
  ];
  for (const [args, entry, code] of cases) {
    const ran = await entriesOf(BIN, args);
    expect({ args, entries: ran.entries, code: ran.code }).toEqual({ args, entries: [entry], code });
  }
});

/** bin/, dist/ and package.json of the built project in a temporary folder, its node_modules linked. */
const copyOfBuild = (): string => {
  const copy = mkdtempSync(join(base, 'copy-'));
  cpSync(join(PROJECT, 'bin'), join(copy, 'bin'), { recursive: true });
  cpSync(join(PROJECT, 'dist'), join(copy, 'dist'), { recursive: true, preserveTimestamps: true });
  cpSync(join(PROJECT, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(PROJECT, 'node_modules'), join(copy, 'node_modules'));
  return copy;
};

test('an npm-style .bin/rxfer symlink, run as a program from another folder, runs the bundle', async () => {
  const copy = copyOfBuild();
  const binDir = join(base, 'app', 'node_modules', '.bin');
  mkdirSync(binDir, { recursive: true });
  symlinkSync(join(copy, 'bin', 'rxfer.js'), join(binDir, 'rxfer'));
  const viaSh = await entriesOf(join(binDir, 'rxfer'), ['--version'], { cwd: '/', viaNode: false });
  expect(viaSh).toMatchObject({ entries: ['client-bundle'], code: 0 });
  expect(viaSh.stdout.trim()).toBe((JSON.parse(readFileSync(join(PROJECT, 'package.json'), 'utf8')) as { version: string }).version);
  const viaNode = await entriesOf(join(binDir, 'rxfer'), ['ls', '-p', port, '--json'], { cwd: '/' });
  expect(viaNode).toMatchObject({ entries: ['client-bundle'], code: 0 });
  expect(viaNode.stdout).toBe((await run(MAIN, ['ls', '-p', port, '--json'])).stdout);
});

test('a dangling symlink in place of the bundle: main.js runs and works', async () => {
  const copy = copyOfBuild();
  const bundle = join(copy, 'dist', 'cli', 'client-bundle.js');
  rmSync(bundle);
  symlinkSync(join(copy, 'nowhere.js'), bundle);
  const ran = await entriesOf(join(copy, 'bin', 'rxfer.js'), ['ls', '-p', port, '--json']);
  expect(ran).toMatchObject({ entries: ['main'], code: 0 });
});

// FOUND (mended): bin/rxfer.js statted dist/cli/client-bundle.js without asking whether it is a file;
// a folder there was taken for the bundle and require()d: MODULE_NOT_FOUND, stack trace, exit 1.
test('a folder in place of the bundle: main.js runs instead of a crash', async () => {
  const copy = copyOfBuild();
  const bundle = join(copy, 'dist', 'cli', 'client-bundle.js');
  rmSync(bundle);
  mkdirSync(bundle);
  const ran = await entriesOf(join(copy, 'bin', 'rxfer.js'), ['--version']);
  expect(ran).toMatchObject({ entries: ['main'], code: 0 });
});

// FOUND (mended): in a checkout, only dist/cli/main.js's mtime was compared with the bundle's. A compile that
// writes only what changed (tsc --incremental, tsc -w, tsc -b) rewrites e.g. dist/cli/explain-failure.js
// and not main.js: the stale bundle runs, with the code from before the change. Simulated here as
// such a compile leaves dist/ (one file rewritten, newer than the bundle; main.js untouched).
const incrementallyCompiledCheckout = (): string => {
  const copy = copyOfBuild();
  mkdirSync(join(copy, 'src'));
  const bundle = join(copy, 'dist', 'cli', 'client-bundle.js');
  const main = join(copy, 'dist', 'cli', 'main.js');
  const changed = join(copy, 'dist', 'cli', 'explain-failure.js');
  const built = new Date(Math.floor(statSync(main).mtimeMs));
  utimesSync(main, built, built);
  utimesSync(bundle, built, new Date(built.getTime() + 1000));
  writeFileSync(changed, readFileSync(changed, 'utf8').replace('is \\`rxfer serve\\` running there?', 'CHANGED: is rxfer serve running there?'));
  utimesSync(changed, built, new Date(built.getTime() + 2000));
  return copy;
};

test('(set-up of the next) the incrementally compiled dist/ says the changed text', async () => {
  const copy = incrementallyCompiledCheckout();
  const ran = await run(join(copy, 'dist', 'cli', 'main.js'), ['ls', '-p', '1']);
  expect(ran).toEqual({ code: 1, stdout: '', stderr: 'rxfer: ERR CONNECTION_LOST could not connect to 127.0.0.1:1 — CHANGED: is rxfer serve running there? (connection refused)\n' });
});

test('in a checkout, a bundle older than any file of dist/ is not run (incremental tsc)', async () => {
  const copy = incrementallyCompiledCheckout();
  const ran = await run(join(copy, 'bin', 'rxfer.js'), ['ls', '-p', '1']);
  expect(ran.stderr).toContain('CHANGED: is rxfer serve running there?');
});
