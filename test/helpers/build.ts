import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
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

/** The CLI runs from dist/ as users run it; build it when it is missing or older than src/. */
export const ensureBuilt = (): void => {
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestSource(join(PROJECT, 'src'))) return;
  const tsc = require.resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(PROJECT, 'tsconfig.build.json')], { cwd: PROJECT, stdio: 'pipe' });
};
