import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { hashOf } from '../../src/integrity/hash-algorithm';
import { startTestServer, TestServer } from '../client/real-server';
import { BIN, MAIN, ensureBuilt, rxfer, spawnServe } from '../helpers/cli';

beforeAll(() => ensureBuilt(), 120_000);

describe('rxfer CLI against the real server', () => {
  let server: TestServer;
  let port: string;

  beforeEach(async () => {
    server = await startTestServer();
    port = String(server.port);
  });
  afterEach(() => server.close());

  test('put then get round-trips a file byte-identical, one summary line each, no progress off a TTY', async () => {
    const data = randomBytes(1024 * 1024 + 5);
    const source = join(server.local, 'report.bin');
    await writeFile(source, data);

    const put = await rxfer(['put', source, 'docs/', '-p', port]);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    const digest = createHash('sha256').update(data).digest('hex');
    expect(put.stdout).toMatch(new RegExp(`^put .*report\\.bin → docs/report\\.bin  1\\.00 MiB  sha256 ${digest.slice(0, 12)}… .*/s\\)\\n$`));
    expect((await readFile(join(server.root, 'docs', 'report.bin'))).equals(data)).toBe(true);

    const out = join(server.local, 'out');
    await mkdir(out);
    const get = await rxfer(['get', 'docs/report.bin', out, '-p', port]);
    expect(get).toMatchObject({ code: 0, stderr: '' });
    expect(get.stdout).toMatch(/^get docs\/report\.bin → .*out\/report\.bin {2}1\.00 MiB/);
    expect((await readFile(join(out, 'report.bin'))).equals(data)).toBe(true);

    const inCwd = await rxfer(['get', 'docs/report.bin', '-q'], { cwd: out, env: { RXFER_PORT: port } });
    expect(inCwd).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await readdir(out)).toEqual(['report.bin']);
  });

  test('put -r, ls --json and get -r copy a folder tree exactly', async () => {
    const tree = join(server.local, 'album');
    const files: Record<string, Buffer> = { 'a.jpg': randomBytes(3000), 'empty': Buffer.alloc(0), 'sub/b é.txt': Buffer.from('b\n') };
    for (const [name, data] of Object.entries(files)) {
      await mkdir(join(tree, ...name.split('/').slice(0, -1)), { recursive: true });
      await writeFile(join(tree, ...name.split('/')), data);
    }
    const put = await rxfer(['put', '-r', tree, 'photos/album', '-p', port]);
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^put -r .*album → photos\/album {2}3 files/);

    const ls = await rxfer(['ls', '-r', 'photos', '--json', '-p', port]);
    expect(ls.code).toBe(0);
    const all = JSON.parse(ls.stdout) as { name: string; type: string; size: number }[];
    expect(all.filter((entry) => entry.type === 'folder').map((entry) => entry.name)).toEqual(['photos/album', 'photos/album/sub']);
    const listed = all.filter((entry) => entry.type === 'file').map((entry) => [entry.name, entry.size]).sort();
    expect(listed).toEqual(Object.entries(files).map(([name, data]) => [`photos/album/${name}`, data.length]).sort());

    const out = join(server.local, 'restore');
    const get = await rxfer(['get', '-r', 'photos/album', out, '-p', port]);
    expect(get.code).toBe(0);
    for (const [name, data] of Object.entries(files)) expect((await readFile(join(out, 'album', ...name.split('/')))).equals(data)).toBe(true);
  });

  test('stat --json, mkdir, mv and rm act on the server; mv onto an existing name exits 1 with ERR EXISTS', async () => {
    const source = join(server.local, 'n.txt');
    await writeFile(source, 'note\n');
    expect((await rxfer(['put', source, 'notes/n.txt', '-q', '-p', port])).code).toBe(0);
    const stat = await rxfer(['stat', 'notes/n.txt', '--json', '-p', port]);
    expect(stat.code).toBe(0);
    expect(JSON.parse(stat.stdout)).toMatchObject({ name: 'notes/n.txt', type: 'file', size: 5, hash: 'sha256', digest: createHash('sha256').update('note\n').digest('hex') });
    expect(await rxfer(['mkdir', 'archive', '-p', port])).toMatchObject({ code: 0, stdout: 'created archive\n' });
    expect((await rxfer(['mv', 'notes/n.txt', 'archive/n.txt', '-p', port])).code).toBe(0);
    expect(await readFile(join(server.root, 'archive', 'n.txt'), 'utf8')).toBe('note\n');
    expect((await rxfer(['put', source, 'notes/n.txt', '-q', '-p', port])).code).toBe(0);
    const clash = await rxfer(['mv', 'notes/n.txt', 'archive/n.txt', '-p', port]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/^rxfer: ERR EXISTS /);
    expect(await rxfer(['rm', 'notes/n.txt', '-p', port])).toMatchObject({ code: 0, stdout: 'deleted notes/n.txt\n' });
    expect(existsSync(join(server.root, 'notes', 'n.txt'))).toBe(false);
  });

  test('add of an existing name exits 1 with ERR EXISTS and keeps the stored file', async () => {
    const source = join(server.local, 'once.txt');
    await writeFile(source, 'first');
    expect((await rxfer(['add', source, '-p', port])).code).toBe(0);
    await writeFile(source, 'second');
    const again = await rxfer(['add', source, '-p', port]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/^rxfer: ERR EXISTS /);
    expect(await readFile(join(server.root, 'once.txt'), 'utf8')).toBe('first');
  });

  test('get of a missing file exits 1 with NOT_FOUND and creates nothing', async () => {
    const result = await rxfer(['get', 'nope.txt', '-p', port], { cwd: server.local });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^rxfer: ERR NOT_FOUND nope\.txt/);
    expect(await readdir(server.local)).toEqual([]);
  });

  test('names are printed with control characters escaped', async () => {
    const source = join(server.local, 'tab\there.txt');
    await writeFile(source, 'x');
    const result = await rxfer(['put', source, 'plain.txt', '-p', port]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('tab\\x09here.txt → plain.txt');
    const bad = await rxfer(['put', source, 'esc\u001b[31mred', '-p', port]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^rxfer: ERR NAME_INVALID /);
    expect(bad.stderr).not.toContain('\u001b');
  });
  test('--hash blake3 (or RXFER_HASH) verifies with BLAKE3 both ways; stat shows the digest in the algorithm asked for', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 3);
    const source = join(server.local, 'b3.bin');
    await writeFile(source, data);
    const blake3 = hashOf('blake3', data);
    const sha256 = createHash('sha256').update(data).digest('hex');

    const put = await rxfer(['put', source, 'b3.bin', '-p', port, '--hash', 'blake3']);
    expect(put).toMatchObject({ code: 0, stderr: '' });
    expect(put.stdout).toMatch(new RegExp(`^put .*b3\\.bin → b3\\.bin  2\\.00 MiB  blake3 ${blake3.slice(0, 12)}… `));
    expect((await readFile(join(server.root, 'b3.bin'))).equals(data)).toBe(true);

    const out = join(server.local, 'b3-back.bin');
    const get = await rxfer(['get', 'b3.bin', out, '-p', port], { env: { RXFER_HASH: 'blake3' } });
    expect(get).toMatchObject({ code: 0, stderr: '' });
    expect(get.stdout).toContain(`blake3 ${blake3.slice(0, 12)}…`);
    expect((await readFile(out)).equals(data)).toBe(true);

    const asBlake3 = await rxfer(['stat', 'b3.bin', '--json', '-p', port, '--hash', 'blake3']);
    expect(JSON.parse(asBlake3.stdout)).toMatchObject({ type: 'file', size: data.length, hash: 'blake3', digest: blake3 });
    // The default connection sees SHA-256: the server hashes the file once for it (a 2 MiB file has a record).
    const again = await rxfer(['get', 'b3.bin', join(server.local, 'sha.bin'), '-p', port]);
    expect(again.stdout).toContain(`sha256 ${sha256.slice(0, 12)}…`);
    const asSha = await rxfer(['stat', 'b3.bin', '--json', '-p', port]);
    expect(JSON.parse(asSha.stdout)).toMatchObject({ hash: 'sha256', digest: sha256 });
    // Same file already there: skipped with either algorithm.
    const skipped = await rxfer(['put', source, 'b3.bin', '-p', port, '--hash', 'blake3']);
    expect(skipped.stdout).toContain('skipped: already there (same size and BLAKE3)');
  });
});

describe('rxfer CLI usage', () => {
  test('--help shows the commands and examples; each command has its own examples', async () => {
    const help = await rxfer(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['serve', 'put', 'add', 'get', 'Examples:', '$ rxfer put']) expect(help.stdout).toContain(word);
    for (const command of ['serve', 'put', 'add', 'get']) {
      const own = await rxfer([command, '--help']);
      expect(own.code).toBe(0);
      expect(own.stdout).toContain(`Usage: rxfer ${command}`);
      expect(own.stdout).toContain(`$ rxfer ${command}`);
    }
  });

  test('bin/rxfer.js runs as a program (sh execs node with the V8 flags of its second line), arguments intact', () => {
    // `rxfer` as installed is this file executed directly: /bin/sh reads the first two lines and execs
    // node with the flags; node must accept them (an unknown one stops it before any output).
    const [shebang, exec] = readFileSync(BIN, 'utf8').split('\n', 2);
    expect(shebang).toBe('#!/bin/sh');
    expect(exec).toBe(
      `':' //; [ "$1" = serve ] && exec node --no-concurrent-sweeping --expose-gc "$0" "$@"; _rx_t=; for _rx_a; do case $_rx_a in --tls|--ca|--ca=*) _rx_t=1;; esac; done; [ -z "$_rx_t\${RXFER_TLS+1}\${RXFER_CA+1}" ] && unset NODE_EXTRA_CA_CERTS; unset _rx_t _rx_a; exec node --no-concurrent-sweeping --expose-gc --max-opt=1 "$0" "$@"`,
    );
    const help = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: rxfer');
    // An argument with spaces, quotes and a dollar sign reaches the CLI unchanged (quoted "$@").
    const odd = 'md 5 "q" $HOME';
    const refused = spawnSync(BIN, ['put', 'x', '--hash', odd, '-p', '1'], { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`argument '${odd}' is invalid`);
    const flags = spawnSync(process.execPath, ['--no-concurrent-sweeping', '--expose-gc', '--max-opt=1', '-e', 'console.log(JSON.stringify([process.execArgv, typeof gc]))'], { encoding: 'utf8' });
    const [execArgv, gcType] = JSON.parse(flags.stdout) as [string[], string];
    expect(execArgv).toEqual(expect.arrayContaining(['--no-concurrent-sweeping', '--expose-gc', '--max-opt=1']));
    expect(gcType).toBe('function');
  });

  test('the server keeps every V8 tier; client commands stop at the baseline one (--max-opt=1)', () => {
    // A stand-in `node` first on the PATH prints the arguments sh would exec node with.
    const fake = mkdtempSync(join(tmpdir(), 'rxfer-fake-node-'));
    try {
      writeFileSync(join(fake, 'node'), '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n', { mode: 0o755 });
      const env = { ...process.env, PATH: `${fake}:${process.env.PATH}` };
      const argsFor = (args: string[]) => spawnSync(BIN, args, { encoding: 'utf8', env }).stdout.split('\n').filter(Boolean);
      expect(argsFor(['serve', '--config', 'a b.json'])).toEqual(['--no-concurrent-sweeping', '--expose-gc', BIN, 'serve', '--config', 'a b.json']);
      for (const command of [['put', '-r', 'x y', 'z'], ['get', 'f'], ['ls'], []]) {
        expect(argsFor(command)).toEqual(['--no-concurrent-sweeping', '--expose-gc', '--max-opt=1', BIN, ...command]);
      }
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  test('NODE_EXTRA_CA_CERTS: dropped for a client command that makes no TLS connection (Node parses it at start-up); kept with --tls, --ca, RXFER_TLS or RXFER_CA, and for serve', () => {
    const fake = mkdtempSync(join(tmpdir(), 'rxfer-fake-node-'));
    try {
      writeFileSync(join(fake, 'node'), '#!/bin/sh\necho "${NODE_EXTRA_CA_CERTS-unset}"\n', { mode: 0o755 });
      const { RXFER_TLS: _tls, RXFER_CA: _ca, ...clean } = process.env;
      const caFor = (args: string[], extra: Record<string, string> = {}) =>
        spawnSync(BIN, args, { encoding: 'utf8', env: { ...clean, PATH: `${fake}:${process.env.PATH}`, NODE_EXTRA_CA_CERTS: '/etc/bundle.pem', ...extra } }).stdout.trim();
      for (const command of [['put', '-r', 'x y', 'z'], ['get', 'f'], ['ls'], ['--help'], [], ['put', 'tls', 'ca']]) expect(caFor(command)).toBe('unset');
      for (const command of [['put', 'a', '--tls'], ['get', 'a', '--ca', 'c.pem'], ['ls', '--ca=c.pem'], ['serve', '--config', 'c.json']]) expect(caFor(command)).toBe('/etc/bundle.pem');
      expect(caFor(['ls'], { RXFER_TLS: '1' })).toBe('/etc/bundle.pem');
      expect(caFor(['ls'], { RXFER_CA: 'c.pem' })).toBe('/etc/bundle.pem');
      // Set but empty still turns TLS on (commander looks only at whether the variable is defined).
      expect(caFor(['ls'], { RXFER_TLS: '' })).toBe('/etc/bundle.pem');
      // A stray variable named like the script's own does not turn the rule around.
      expect(caFor(['ls'], { _rx_t: '1' })).toBe('unset');
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });

  test('--help loads neither the client, the server nor cli-progress (start-up time)', () => {
    const script =
      `process.argv = [process.argv[0], 'rxfer', '--help'];` +
      `process.stdout.write = () => true;` +
      `process.on('exit', () => require('fs').writeSync(2, JSON.stringify(Object.keys(require.cache))));` +
      `require(${JSON.stringify(MAIN)});`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    const loaded = JSON.parse(run.stderr) as string[];
    expect(loaded.some((path) => path.endsWith(join('cli', 'build-program.js')))).toBe(true);
    expect(loaded.filter((path) => /[/\\](client|server|container)[/\\]|cli-progress|inversify|pino|blake-hash/.test(path))).toEqual([]);
  });

  test.each([
    [['get', 'x', '-p', '0']],
    [['get', 'x', '-p', '65536']],
    [['put', 'x', '--port', 'abc']],
    [['get', 'x', '-p', '0x50']],
    [['put', 'x', '--hash', 'md5']],
    [['put']],
    [['frobnicate']],
  ])('usage error %j exits 2', async (args) => {
    const result = await rxfer(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^rxfer: error: /);
  });

  test('a bad RXFER_PORT is a usage error too', async () => {
    const result = await rxfer(['get', 'x'], { env: { RXFER_PORT: 'nine' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('RXFER_PORT');
  });

  test('no server: exit 1 with ERR CONNECTION_LOST', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const free = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const result = await rxfer(['get', 'x', '-p', String(free)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^rxfer: ERR CONNECTION_LOST /);
  });
});

describe('rxfer CLI interruption', () => {
  test.each([
    ['keeps what arrived for a resume', [], ['.big.bin.rxfer-resume']],
    ['with --no-resume leaves no staging file', ['--no-resume'], []],
  ])('SIGINT during a download exits 130 and %s', async (_title, flags, left) => {
    // A server that announces a body, sends a little of it and then stalls: the real server cannot be
    // made to stall on purpose, and the CLI must be mid-transfer when the signal arrives.
    let bodyStarted!: () => void;
    const started = new Promise<void>((resolve) => (bodyStarted = resolve));
    const stalling = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write('OK rxfer/1 caps=download hash=sha256\n');
      socket.once('data', () => {
        // From 1 MiB on a download is kept for a resume (smaller ones stage in a file of their own).
        socket.write(`OK 2000000 ${'0'.repeat(64)}\n`);
        socket.write(Buffer.alloc(1000), () => bodyStarted());
      });
    });
    stalling.listen(0, '127.0.0.1');
    await once(stalling, 'listening');
    const folder = await mkdtemp(join(tmpdir(), 'rxfer-cli-'));
    try {
      const child = spawn(process.execPath, [BIN, 'get', 'big.bin', folder, ...flags, '-p', String((stalling.address() as AddressInfo).port)]);
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      await started;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await readdir(folder)).some((name) => name.includes('.rxfer-'))).toBe(true);
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      expect(code).toBe(130);
      expect(stderr).toContain('interrupted');
      expect(await readdir(folder)).toEqual(left);
      if (left.length > 0) {
        expect(stderr).toContain('run the same command again to resume');
        expect(statSync(join(folder, left[0]!)).size).toBe(1000);
      }
    } finally {
      stalling.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('rxfer serve', () => {
  test('serves until SIGINT, then exits 0', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'rxfer-serve-'));
    const { child, port } = await spawnServe(join(folder, 'root'));
    try {
      const source = join(folder, 'a.txt');
      await writeFile(source, 'served');
      expect((await rxfer(['put', source, '-p', port, '-q'])).code).toBe(0);
      expect(await readFile(join(folder, 'root', 'a.txt'), 'utf8')).toBe('served');
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('an unreadable config exits 2 with ERR CONFIG_INVALID', async () => {
    const result = await rxfer(['serve', '--config', join(tmpdir(), 'no-such-rxfer-config.json')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^rxfer: ERR CONFIG_INVALID /);
  });
});
