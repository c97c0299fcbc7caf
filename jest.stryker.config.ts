import { join } from 'node:path';
import type { Config } from 'jest';
import base from './jest.config';

/**
 * Jest as Stryker runs it (stryker.config.json). Two differences from jest.config.ts, both for speed
 * (ts-jest only transpiles there too, and Stryker's TypeScript checker type-checks each mutant):
 * - Only in-process suites. Not here: test/cli (runs the compiled dist/, which no mutant reaches),
 *   test/s3 (needs a Ceph RGW), and the regression/process tests that spawn `bin/rxfer.js`.
 *   `RXFER_MUTATION_TESTS` (comma-separated paths under test/) narrows it further, per folder
 *   (scripts/mutate-changed.js and test/MUTATION.md use it).
 * - A test file stops at its first failing test (scripts/mutation/first-failure-environment.js).
 */
const IN_PROCESS = ['unit', 'promises', 'integration', 'security', 'storage-contract', 'client', 'reliability', 'regressions'];
const SPAWNS_THE_CLI = ['issue-14-disk-full-cli', 'issue-16-server-process', 'cli-tls-token'];

const chosen = (process.env.RXFER_MUTATION_TESTS ?? '')
  .split(',')
  .map((path) => path.trim())
  .filter(Boolean);
const roots = chosen.length > 0 ? chosen : IN_PROCESS;

const config: Config = {
  ...base,
  // src/ too: Jest's --findRelatedTests (which Stryker uses) only follows imports into its roots.
  roots: ['<rootDir>/test', '<rootDir>/src'],
  // No dist/ build before the run: no suite here runs the CLI (and src/ holds the mutants).
  globalSetup: undefined,
  testMatch: roots.map((path) => (path.endsWith('.test.ts') ? `<rootDir>/test/${path}` : `<rootDir>/test/${path}/**/*.test.ts`)),
  testPathIgnorePatterns: ['/node_modules/', ...SPAWNS_THE_CLI.map((name) => `/${name}\\.test\\.ts$`)],
  // A file stops at its first failing test: one is all Stryker needs to call a mutant killed.
  // An absolute path: Stryker wraps the environment itself and does not expand <rootDir>.
  testEnvironment: join(__dirname, 'scripts', 'mutation', 'first-failure-environment.js'),
};

export default config;
