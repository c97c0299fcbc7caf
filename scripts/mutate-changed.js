#!/usr/bin/env node
/**
 * Mutation testing of what a change touched, for CI: `npm run mutate:changed [-- options]`.
 *
 * Takes the src/ files changed against a base (committed since the merge base with origin/main, or
 * since HEAD~1 without it, plus uncommitted and untracked files), keeps those inside the scope of
 * stryker.config.json (`mutate`), and runs Stryker on the changed LINES of those files only
 * (`file.ts:12-40`), with the tests the mutation plan gives each file (scripts/mutation/plan.js), or
 * its folder's focused tests for a file no group names yet. Nothing in scope changed: exits 0
 * at once. A wall-clock budget bounds the run: past it Stryker is stopped and the script fails,
 * so a CI job never hangs on it. Full runs: test/MUTATION.md.
 *
 * Options:
 *   --base <ref>        compare with this ref (default: merge base with origin/main, else HEAD~1)
 *   --whole-files       mutate the changed files entirely, not only their changed lines
 *   --budget-min <n>    wall-clock limit in minutes (default 10)
 *   --break <score>     fail when the mutation score of the changed code is below this (default: report only)
 *   --concurrency <n>   Stryker processes (default 2)
 *   --dry               print what would be mutated and with which tests, and stop
 *
 * Env: STRYKER_BIN, the stryker.js to run (default: the project's @stryker-mutator/core).
 */
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const plan = require('./mutation/plan');
const { inScope } = require('./mutation/scope');
const { ROOT, baseConfig, runStryker } = require('./mutation/stryker-run');

/**
 * Focused tests per folder, for a changed file the plan has no group for (paths under test/; see
 * jest.stryker.config.ts, RXFER_MUTATION_TESTS). In-process tests only: a test that runs
 * bin/rxfer.js runs dist/, which no mutant reaches.
 */
const FOCUSED_TESTS = {
  'src/protocol/': ['unit/protocol', 'promises', 'integration/transfer.test.ts', 'integration/file-ops.test.ts', 'integration/resume.test.ts', 'security/hostile-names.test.ts', 'security/limits.test.ts'],
  'src/auth/': ['promises', 'regressions/issue-16-quota.test.ts', 'regressions/issue-16-exhaustion.test.ts'],
  'src/storage/': ['unit/storage', 'promises', 'storage-contract', 'integration/resume.test.ts', 'integration/file-ops.test.ts', 'integration/transfer.test.ts', 'security/symlinks.test.ts', 'reliability/storage-faults.test.ts', 'regressions/issue-14-commit-races.test.ts', 'regressions/issue-14-disk-full.test.ts'],
  'src/pipeline/': ['promises', 'integration', 'security/limits.test.ts', 'regressions/issue-14-session.test.ts', 'regressions/issue-16-list.test.ts'],
  'src/session/': ['promises', 'integration', 'security/limits.test.ts', 'regressions/issue-14-session.test.ts', 'regressions/issue-16-exhaustion.test.ts'],
  'src/client/': ['integration/resume.test.ts', 'regressions/issue-14-client-disk-full.test.ts', 'security/get-recursive.test.ts', 'client/download-durable.test.ts'],
};

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
};
const flag = (name) => args.includes(name);

const git = (...gitArgs) => execFileSync('git', gitArgs, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
const tryGit = (...gitArgs) => {
  try {
    return git(...gitArgs);
  } catch {
    return undefined;
  }
};

/** The ref to compare with: --base, else the merge base with origin/main, else HEAD~1, else none. */
const baseRef = () => {
  const given = option('--base');
  if (given) return given;
  if (tryGit('rev-parse', '--verify', '--quiet', 'origin/main')) return tryGit('merge-base', 'origin/main', 'HEAD');
  return tryGit('rev-parse', '--verify', '--quiet', 'HEAD~1') ? 'HEAD~1' : undefined;
};

/** Changed line ranges per file ('new' side of the diff), from `git diff -U0`. */
const changedLines = (base) => {
  const ranges = new Map();
  const add = (diff) => {
    let file;
    for (const line of diff.split('\n')) {
      const header = /^\+\+\+ (?:b\/)?(.*)$/.exec(line);
      if (header) {
        file = header[1] === '/dev/null' ? undefined : header[1];
        continue;
      }
      const hunk = /^@@ -\S+ \+(\d+)(?:,(\d+))? @@/.exec(line);
      if (!hunk || !file) continue;
      const start = Number(hunk[1]);
      const count = hunk[2] === undefined ? 1 : Number(hunk[2]);
      if (count === 0) continue; // a pure deletion: no line left to mutate (its neighbours are unchanged)
      if (!ranges.has(file)) ranges.set(file, []);
      ranges.get(file).push([start, start + count - 1]);
    }
  };
  // Committed since the base, and what is not committed yet (against HEAD).
  if (base) add(tryGit('diff', '-U0', '--no-color', `${base}...HEAD`, '--', 'src') ?? '');
  add(tryGit('diff', '-U0', '--no-color', 'HEAD', '--', 'src') ?? '');
  // Untracked files are new: all of them.
  for (const file of (tryGit('ls-files', '--others', '--exclude-standard', '--', 'src') ?? '').split('\n').filter(Boolean)) ranges.set(file, 'all');
  return ranges;
};

const main = async () => {
  let base = baseRef();
  if (base && !tryGit('rev-parse', '--verify', '--quiet', `${base}^{commit}`)) {
    // A shallow clone without the base, say: say so rather than pretend nothing changed.
    console.warn(`mutate:changed: base ${base} is not in this clone; only uncommitted changes are looked at`);
    base = undefined;
  }
  const changes = [...changedLines(base)].filter(([file]) => inScope(file) && existsSync(join(ROOT, file)));
  console.log(`mutate:changed: base ${base ?? '(none: working tree only)'}; ${changes.length} changed file(s) in the mutation scope`);
  if (changes.length === 0) {
    console.log('mutate:changed: nothing to mutate');
    return 0;
  }
  const wholeFiles = flag('--whole-files');
  const mutate = changes.flatMap(([file, ranges]) =>
    wholeFiles || ranges === 'all' ? [file] : ranges.map(([from, to]) => `${file}:${from}-${to}`),
  );
  const testsOf = (file) =>
    plan.find((g) => g.mutate.includes(file))?.tests ?? Object.entries(FOCUSED_TESTS).find(([folder]) => file.startsWith(folder))?.[1] ?? ['promises'];
  const tests = [...new Set(changes.flatMap(([file]) => testsOf(file)))];
  for (const spec of mutate) console.log(`  mutate ${spec}`);
  console.log(`  tests  ${tests.join(', ')}`);
  if (flag('--dry')) return 0;

  const breakAt = option('--break');
  const budgetMs = Number(option('--budget-min', '10')) * 60_000;
  const { code, overBudget } = await runStryker({
    label: 'changed',
    tests,
    budgetMs,
    overrides: {
      mutate,
      concurrency: Number(option('--concurrency', '2')),
      // The incremental files of full runs are not touched: this run's results cover a few lines only.
      incremental: false,
      reporters: ['clear-text', 'progress-append-only', 'json'],
      jsonReporter: { fileName: 'reports/mutation/changed.json' },
      thresholds: { ...baseConfig().thresholds, break: breakAt === undefined ? null : Number(breakAt) },
    },
  });
  if (overBudget) {
    console.error(`mutate:changed: over the ${budgetMs / 60_000} min budget; Stryker was stopped`);
    return 2;
  }
  return code;
};

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
