import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, PROJECT, cliEnv, ensureBuilt } from '../helpers/cli';

/**
 * bin/rxfer.js runs client commands from the bundle scripts/bundle-cli.js makes (dist/cli/client-bundle.js)
 * and `serve` and `token` from dist/cli/main.js; in a checkout, a bundle older than a file it was made
 * from is never run (bin/client-bundle.js). Which entry a command loaded is read from Node's own module
 * log (NODE_DEBUG=module), as the process really loaded it.
 * The rest of the suite runs the bundle wherever it runs bin/rxfer.js: this file checks the choice.
 */
jest.setTimeout(60_000);

beforeAll(() => ensureBuilt(), 180_000);

interface Loaded {
  readonly entries: string[];
  readonly code: number | null;
  readonly stdout: string;
}

/** The dist/cli entry files `bin` loaded for `args` (in order), its exit code and its output. */
const loadedBy = (bin: string, args: string[]): Promise<Loaded> =>
  new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: cliEnv({ NODE_DEBUG: 'module' }) }, (err, stdout, stderr) => {
      const entries = [...stderr.matchAll(/load "[^"]*\/dist\/cli\/(client-bundle|main)\.js" for module/g)].map((m) => m[1]!);
      resolve({ entries, code: err ? ((err as { code?: number }).code ?? null) : 0, stdout });
    });
  });

test('a client command runs from the bundle alone', async () => {
  const version = await loadedBy(BIN, ['--version']);
  expect(version).toMatchObject({ entries: ['client-bundle'], code: 0 });
  expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  // Nothing on the line names a server-side command: the bundle, even for a command that then fails.
  expect((await loadedBy(BIN, ['ls', '-p', '1', '-H', '127.0.0.1'])).entries).toEqual(['client-bundle']);
});

test('serve and token run from dist/, wherever the word is on the line', async () => {
  for (const args of [['serve', '--help'], ['token', '--help'], ['--help', 'serve'], ['put', 'token', 'x', '-p', '1']]) {
    expect((await loadedBy(BIN, args)).entries).toEqual(['main']);
  }
});

test('in a checkout, a bundle older than dist/ (tsc run alone) is not run, nor a missing one', async () => {
  // A copy of the built project, so that changing its files' times touches nothing another test runs;
  // its src/ (empty: only its presence counts) makes it a checkout.
  const copy = copyOfBuild();
  try {
    mkdirSync(join(copy, 'src'));
    const bin = join(copy, 'bin', 'rxfer.js');
    const bundle = join(copy, 'dist', 'cli', 'client-bundle.js');
    const main = join(copy, 'dist', 'cli', 'main.js');

    // As built (the copy keeps the times): the bundle, made after every file it was made from.
    expect((await loadedBy(bin, ['--version'])).entries).toEqual(['client-bundle']);

    // dist/ compiled again after the bundle was made: its main.js is newer.
    const madeAt = statSync(bundle).mtime;
    utimesSync(main, madeAt, new Date(madeAt.getTime() + 1000));
    const stale = await loadedBy(bin, ['--version']);
    expect(stale).toMatchObject({ entries: ['main'], code: 0 });

    // Bundled again: current.
    utimesSync(bundle, madeAt, new Date(madeAt.getTime() + 2000));
    expect((await loadedBy(bin, ['--version'])).entries).toEqual(['client-bundle']);

    rmSync(bundle);
    expect((await loadedBy(bin, ['--version'])).entries).toEqual(['main']);

    // And the bundle is what it says: a bundle that cannot run is seen to be the one run.
    writeFileSync(bundle, 'process.stdout.write("the bundle ran\\n");\n');
    expect((await loadedBy(bin, ['--version'])).stdout).toBe('the bundle ran\n');

    // Without the list of the files it was made from, it cannot be shown current.
    rmSync(join(copy, 'dist', 'cli', 'client-bundle.json'));
    expect((await loadedBy(bin, ['--version'])).entries).toEqual(['main']);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test('installed (no src/), the bundle runs even a moment older than dist/: npm unpacks in any order', async () => {
  const copy = copyOfBuild();
  try {
    const bundle = join(copy, 'dist', 'cli', 'client-bundle.js');
    const main = join(copy, 'dist', 'cli', 'main.js');
    const built = new Date(Math.floor(statSync(main).mtimeMs));
    utimesSync(main, built, built);
    utimesSync(bundle, built, new Date(built.getTime() - 500));
    const version = await loadedBy(join(copy, 'bin', 'rxfer.js'), ['--version']);
    expect(version).toMatchObject({ entries: ['client-bundle'], code: 0 });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

/** bin/, dist/ and package.json of the built project in a temporary folder, its node_modules linked. */
const copyOfBuild = (): string => {
  const copy = mkdtempSync(join(tmpdir(), 'rxfer-bundle-'));
  cpSync(join(PROJECT, 'bin'), join(copy, 'bin'), { recursive: true });
  cpSync(join(PROJECT, 'dist'), join(copy, 'dist'), { recursive: true, preserveTimestamps: true });
  cpSync(join(PROJECT, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(PROJECT, 'node_modules'), join(copy, 'node_modules'));
  return copy;
};
