import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The Jest environment of mutation runs (scripts/mutation/first-failure-environment.js) skips a mutant's
 * tests after its first failure, and must never change what Stryker concludes: a kill stays a kill (a
 * failed test, no suite error), and a run without a mutant (Stryker's dry run) skips nothing. Real Jest,
 * run as Stryker runs it (in band, the mutation config, the mutant's id in the environment), on fixtures
 * of the cases a hostile pass found (test/unit/mutation/fixtures/).
 */
jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..', '..');
const FIXTURES = '<rootDir>/test/unit/mutation/fixtures';

interface JestJson {
  numFailedTests: number;
  numPassedTests: number;
  numPendingTests: number;
  numRuntimeErrorTestSuites: number;
}

/** Jest on the fixtures named, as a mutant's run (`mutant` set) or the dry run; its --json summary. */
const runFixtures = (names: string[], mutant?: string): JestJson => {
  // A fresh cache: no timing data, so Jest orders the files by size, largest first (see a-fails-first).
  const scratch = mkdtempSync(join(tmpdir(), 'rxfer-mutation-env-'));
  try {
    const out = join(scratch, 'out.json');
    const env: NodeJS.ProcessEnv = { ...process.env, RXFER_MUTATION_TESTS: '' };
    delete env.__STRYKER_ACTIVE_MUTANT__;
    if (mutant !== undefined) env.__STRYKER_ACTIVE_MUTANT__ = mutant;
    const testMatch = names.flatMap((name) => ['--testMatch', `${FIXTURES}/${name}.fixture.ts`]);
    const jestBin = join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
    const args = [jestBin, '-c', 'jest.stryker.config.ts', '--runInBand', '--ci', '--cacheDirectory', scratch, ...testMatch, '--json', '--outputFile', out];
    const run = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8' });
    const summary = JSON.parse(readFileSync(out, 'utf8')) as JestJson;
    expect({ status: run.status, stderr: run.status === 0 || summary.numFailedTests > 0 ? '' : run.stderr }).toMatchObject({ stderr: '' });
    const { numFailedTests, numPassedTests, numPendingTests, numRuntimeErrorTestSuites } = summary;
    return { numFailedTests, numPassedTests, numPendingTests, numRuntimeErrorTestSuites };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
};

test('after a failure the file and the later files are skipped, their hooks too: a kill, not a suite error', () => {
  expect(runFixtures(['a-fails-first', 'later-file'], '7')).toEqual({ numFailedTests: 1, numPassedTests: 0, numPendingTests: 2, numRuntimeErrorTestSuites: 0 });
});

test('the dry run (no mutant) skips nothing', () => {
  expect(runFixtures(['a-fails-first', 'later-file'])).toEqual({ numFailedTests: 1, numPassedTests: 2, numPendingTests: 0, numRuntimeErrorTestSuites: 0 });
});

test('a test Jest retries (jest.retryTimes) still fails: its retry is not skipped away', () => {
  expect(runFixtures(['retried'], '8')).toMatchObject({ numFailedTests: 1, numRuntimeErrorTestSuites: 0 });
});

test('a failed beforeAll still fails the tests under it: they are not skipped away', () => {
  expect(runFixtures(['before-all'], '9')).toMatchObject({ numFailedTests: 1, numRuntimeErrorTestSuites: 0 });
});
