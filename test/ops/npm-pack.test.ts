import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT, ensureBuilt } from '../helpers/cli';
import { RawClient, sha256, uploadRequest } from '../helpers/raw-client';
import { eventually, httpGet } from './ops-support';

const run = promisify(execFile);

/**
 * `npm pack`, then `npm i <tarball>` in an empty folder, then the installed `rxfer` serves a file and
 * its client (the bundled one: scripts/bundle-cli.js) downloads it.
 * The install resolves dependencies with --prefer-offline: from this machine's npm cache, asking
 * the registry (the one CI reaches for `npm ci` anyway) only for what the cache lacks. No other
 * network. Takes ≈ 15 s here. `--ignore-scripts` on pack: dist/ is built by ensureBuilt already,
 * and `prepare` would only build it again.
 */
jest.setTimeout(120_000);

test('the packed tarball installs in an empty folder and its rxfer serves', async () => {
  ensureBuilt();
  const tmp = await mkdtemp(join(tmpdir(), 'rxfer-pack-'));
  try {
    await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: PROJECT });
    const tarball = (await readdir(tmp)).find((name) => name.endsWith('.tgz'));
    expect(tarball).toMatch(/^rxfer-\d+\.\d+\.\d+\.tgz$/);
    const app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'empty', private: true }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(tmp, tarball!)], { cwd: app, timeout: 90_000 });

    const bin = join(app, 'node_modules', '.bin', 'rxfer');
    // Through its bundle: npm gives every packed file one mtime, and a bundle as old as dist/ is current.
    const { stdout: version, stderr: loaded } = await run(bin, ['--version'], { cwd: app, env: { ...process.env, NODE_DEBUG: 'module' } });
    expect(version.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(loaded).toMatch(/load "[^"]*\/node_modules\/rxfer\/dist\/cli\/client-bundle\.js" for module/);

    const child = spawn(bin, ['serve', '--port', '0', '--metrics-port', '0', '--root', join(app, 'data')], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const port = Number(await eventually('listening', () => /"port":(\d+),"transport"/.exec(output)?.[1]));
      const metricsPort = Number(await eventually('metrics', () => /"metricsPort":(\d+)/.exec(output)?.[1]));
      expect((await httpGet(metricsPort, '/healthz')).status).toBe(200);
      const client = await RawClient.connect(port);
      await client.send(uploadRequest('hello.txt', 'hello from the packed rxfer\n'));
      expect(await client.readUploadOutcome()).toBe(`OK file data recv 28 ${sha256('hello from the packed rxfer\n')}`);
      client.destroy();
      // A client command runs from the packed bundle (dist/cli/client-bundle.js), with the installed dependencies.
      await run(bin, ['get', 'hello.txt', join(app, 'fetched.txt'), '-p', String(port), '-q'], { cwd: app });
      expect(await readFile(join(app, 'fetched.txt'), 'utf8')).toBe('hello from the packed rxfer\n');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
