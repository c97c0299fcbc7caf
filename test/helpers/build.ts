import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const PROJECT = join(__dirname, '..', '..');
const MAIN = join(PROJECT, 'dist', 'cli', 'main.js');
/** What bin/rxfer.js runs for client commands (scripts/bundle-cli.js), when it is not older than MAIN. */
const BUNDLE = join(PROJECT, 'dist', 'cli', 'client-bundle.js');

const newestSource = (folder: string): number =>
  Math.max(
    0,
    ...readdirSync(folder, { withFileTypes: true }).map((entry) => {
      const path = join(folder, entry.name);
      return entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs;
    }),
  );

const builtAt = (file: string): number => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? -1;

/** bin/rxfer.js's rule in a checkout: the bundle is current while no file it was made from (listed beside it) is newer. */
const bundleIsCurrent = (): boolean => {
  const madeAt = builtAt(BUNDLE);
  try {
    const { inputs } = JSON.parse(readFileSync(join(PROJECT, 'dist', 'cli', 'client-bundle.json'), 'utf8')) as { inputs: string[] };
    return madeAt >= 0 && inputs.every((input) => builtAt(join(PROJECT, input)) <= madeAt);
  } catch {
    return false;
  }
};

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
  if (!compiled || !bundleIsCurrent()) execFileSync(process.execPath, [join(PROJECT, 'scripts', 'bundle-cli.js'), PROJECT], { cwd: PROJECT, stdio: 'pipe' });
};
