import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const PROJECT = join(__dirname, '..', '..');
const MAIN = join(PROJECT, 'dist', 'cli', 'main.js');

const newestSource = (folder: string): number =>
  Math.max(
    0,
    ...readdirSync(folder, { withFileTypes: true }).map((entry) => {
      const path = join(folder, entry.name);
      return entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs;
    }),
  );

const builtAt = (file: string): number => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? -1;

/** bin/rxfer.js's own rule for whether the client commands' bundle is current (bin/client-bundle.js). */
const { currentBundle } = require(join(PROJECT, 'bin', 'client-bundle.js')) as { currentBundle: (project: string) => string | undefined };

/**
 * The CLI runs from dist/ as users run it; build it as `npm run build` does (tsc, then the client's
 * bundle) when it is missing or older than src/. A bundle older than what it was made from is made
 * again too: the tests must run the bundle users get, and bin/rxfer.js would otherwise quietly run
 * dist/ instead.
 */
export const ensureBuilt = (): void => {
  const compiled = builtAt(MAIN) >= newestSource(join(PROJECT, 'src'));
  if (!compiled) {
    const tsc = require.resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', join(PROJECT, 'tsconfig.build.json')], { cwd: PROJECT, stdio: 'pipe' });
  }
  if (!compiled || currentBundle(PROJECT) === undefined) execFileSync(process.execPath, [join(PROJECT, 'scripts', 'bundle-cli.js'), PROJECT], { cwd: PROJECT, stdio: 'pipe' });
};
