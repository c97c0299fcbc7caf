'use strict';
/**
 * One Stryker run, as the mutation scripts make it (scripts/mutate-all.js, scripts/mutate-changed.js):
 * a config of its own written beside the reports (Stryker's command line takes no nested options),
 * the focused tests passed through RXFER_MUTATION_TESTS (jest.stryker.config.ts), a wall-clock budget
 * that stops Stryker's whole process group, and the score read back from its JSON report.
 */
const { spawn } = require('node:child_process');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');

// The package's `exports` hide bin/, so the path is found from where the package is installed.
const strykerBin = () => process.env.STRYKER_BIN ?? join(ROOT, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js');

const baseConfig = () => {
  const config = JSON.parse(readFileSync(join(ROOT, 'stryker.config.json'), 'utf8'));
  delete config.$schema;
  return config;
};

/**
 * Runs Stryker with `overrides` on stryker.config.json, `tests` (paths under test/) as the only
 * tests, stopped after `budgetMs`. Resolves to `{ code, overBudget }`.
 */
const runStryker = ({ label, overrides, tests, budgetMs, quiet = false }) => {
  mkdirSync(join(ROOT, 'reports'), { recursive: true });
  const configPath = join('reports', `stryker.${label}.config.json`);
  writeFileSync(join(ROOT, configPath), JSON.stringify({ ...baseConfig(), ...overrides }, null, 2));
  const child = spawn(process.execPath, [strykerBin(), 'run', configPath], {
    cwd: ROOT,
    stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
    detached: true, // its own process group: the budget stops test runners and checkers too
    env: { ...process.env, RXFER_MUTATION_TESTS: tests.join(',') },
  });
  let overBudget = false;
  const timer = setTimeout(() => {
    overBudget = true;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }, budgetMs);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, overBudget });
    }),
  );
};

/**
 * CPU seconds (user + system) of every child this process has waited for, Stryker's runners and
 * checkers included (each waited by its parent): /proc/self/stat's cutime and cstime. Unlike wall
 * time it does not grow when other work shares the machine, so it says what a run costs on idle
 * cores (about CPU ÷ concurrency). Undefined where /proc is absent.
 */
const childCpuSeconds = () => {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // After "pid (comm) ", field 3 is at index 0: cutime is field 16, cstime 17, in clock ticks (100/s on Linux).
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return undefined;
  }
};

/** Counts per status, and the survivors' places, from a mutation-testing-report-schema JSON file. */
const readReport = (reportPath) => {
  if (!existsSync(reportPath)) return undefined;
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  const counts = {};
  const survivors = [];
  for (const [file, { mutants }] of Object.entries(report.files)) {
    for (const mutant of mutants) {
      counts[mutant.status] = (counts[mutant.status] ?? 0) + 1;
      if (mutant.status === 'Survived' || mutant.status === 'NoCoverage') {
        survivors.push({ file, line: mutant.location.start.line, column: mutant.location.start.column, mutator: mutant.mutatorName, replacement: mutant.replacement, status: mutant.status });
      }
    }
  }
  return { counts, survivors };
};

/** Stryker's score: detected ÷ (detected + undetected); compile errors and ignored mutants left out. */
const scoreOf = (counts) => {
  const detected = (counts.Killed ?? 0) + (counts.Timeout ?? 0);
  const undetected = (counts.Survived ?? 0) + (counts.NoCoverage ?? 0);
  return detected + undetected === 0 ? undefined : (100 * detected) / (detected + undetected);
};

module.exports = { ROOT, baseConfig, runStryker, readReport, scoreOf, childCpuSeconds };
