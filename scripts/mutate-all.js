#!/usr/bin/env node
/**
 * The full mutation run: `npm run mutate [-- options]`. One Stryker run per group of
 * scripts/mutation/plan.js, each with only its own fast tests, then one table: score per group and
 * per folder against issue 18's targets (≥ 85 % in storage, pipeline, protocol, auth; ≥ 75 %
 * elsewhere), the survivors nobody has judged yet, and the files in scope that no group measures.
 *
 * Options:
 *   --only <text>       run the groups whose label or files contain <text> (repeatable, comma-separated)
 *   --parallel <n>      groups run at a time (default 2), each its own Stryker, longest first (by the last
 *                       whole run's minutes, scripts/mutation/durations.json), each with one test process
 *                       but the groups the plan says mostly wait on timeouts (two). A fresh whole run: 57.9
 *                       min on this 2-core machine (test/MUTATION.md, thirteenth session). `--parallel 1`
 *                       tells each group's CPU apart
 *   --concurrency <n>   Stryker processes per group (default 2, or 1 with --parallel 2 or more; a group the plan
 *                       says mostly waits on timeouts keeps its own 2)
 *   --checker           keep the TypeScript checker (off by default: it costs ~75 s and a process per group)
 *   --group-budget-min <n>  stop a group after n minutes (default 20); it is reported as cut
 *   --fresh             ignore the incremental files (reports/inc/<label>.json) and test every mutant again
 *   --break             exit 1 when a folder is below its target or a survivor is unexplained
 *
 * Reports: reports/mutation/<label>.json per group, reports/mutation/summary.json for all.
 */
'use strict';
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const plan = require('./mutation/plan');
const { ROOT, baseConfig, runStryker, readReport, scoreOf, childCpuSeconds } = require('./mutation/stryker-run');
const { inScope, scopeFiles } = require('./mutation/scope');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
};
const flag = (name) => args.includes(name);
const only = args.flatMap((arg, at) => (args[at - 1] === '--only' ? arg.split(',') : []));

/** Issue 18's targets, by folder. */
const TARGETS = { 'src/storage/': 85, 'src/pipeline/': 85, 'src/protocol/': 85, 'src/auth/': 85 };
const targetOf = (folder) => TARGETS[folder] ?? 75;
const folderOf = (file) => file.split('/').slice(0, 2).join('/') + '/';

/**
 * A survivor is explained when its group lists it: `path:line Mutator` for every mutant of that kind
 * on the line, or `path:line:column Mutator → replacement` for exactly one (where the line's other
 * mutants of the kind are killed, and a line-wide entry would hide a regression among them).
 */
const isListed = (equivalent, s) => equivalent.has(`${s.file}:${s.line} ${s.mutator}`) || equivalent.has(exactKey(s));
const exactKey = (s) => `${s.file}:${s.line}:${s.column} ${s.mutator} → ${s.replacement}`;

/** Minutes per group of the last run of the whole plan, kept in the repository so a fresh clone orders its groups too. */
const DURATIONS = join(__dirname, 'mutation', 'durations.json');
const lastDurations = () => (existsSync(DURATIONS) ? JSON.parse(readFileSync(DURATIONS, 'utf8')) : {});
const saveDurations = (results) =>
  writeFileSync(DURATIONS, `${JSON.stringify(Object.fromEntries(results.map((r) => [r.label, Number((r.ms / 60_000).toFixed(1))])), null, 2)}\n`);

const pct = (score) => (score === undefined ? '—' : `${score.toFixed(1)} %`);
const minutes = (ms) => `${(ms / 60_000).toFixed(1)} min`;

const main = async () => {
  const groups = plan.filter((g) => only.length === 0 || only.some((text) => g.label.includes(text) || g.mutate.some((file) => file.includes(text))));
  const planned = new Set(plan.flatMap((g) => g.mutate));
  const unplanned = scopeFiles().filter((file) => !planned.has(file));
  const outOfScope = [...planned].filter((file) => !inScope(file));
  console.log(`mutate: ${groups.length} of ${plan.length} groups; ${unplanned.length} file(s) in scope not in any group`);

  const parallel = Math.max(1, Number(option('--parallel', '2')));
  const concurrencyPerGroup = Number(option('--concurrency', parallel > 1 ? '1' : '2'));
  const results = [];
  const started = Date.now();
  const runGroup = async (g) => {
    const reportPath = join('reports', 'mutation', `${g.label}.json`);
    const groupStart = Date.now();
    const cpuBefore = childCpuSeconds();
    console.log(`\n=== ${g.label}: ${g.mutate.join(', ')}\n    tests: ${g.tests.join(', ')}`);
    const { overBudget } = await runStryker({
      label: g.label,
      tests: g.tests,
      budgetMs: Number(option('--group-budget-min', '20')) * 60_000,
      overrides: {
        mutate: g.mutate,
        concurrency: g.concurrency ?? concurrencyPerGroup,
        ...(g.timeoutMS !== undefined && { timeoutMS: g.timeoutMS }),
        checkers: flag('--checker') ? baseConfig().checkers : [],
        incremental: !flag('--fresh'),
        incrementalFile: join('reports', 'inc', `${g.label}.json`),
        tempDirName: `.stryker-tmp-${g.label}`,
        // Two groups' progress lines interleaved say nothing: each says when it is done instead.
        reporters: parallel > 1 ? ['json'] : ['progress-append-only', 'json'],
        jsonReporter: { fileName: reportPath },
      },
    });
    const report = overBudget ? undefined : readReport(join(ROOT, reportPath));
    const equivalent = new Set(g.equivalent);
    const survivors = report?.survivors ?? [];
    const unexplained = survivors.filter((s) => !isListed(equivalent, s));
    const score = report && scoreOf(report.counts);
    if (parallel > 1) console.log(`=== ${g.label} done: ${pct(score)} in ${minutes(Date.now() - groupStart)}${overBudget ? ' (CUT: over budget)' : ''}`);
    // With groups side by side the children's CPU is shared: only the total is known.
    const cpuSeconds = parallel > 1 ? undefined : childCpuSeconds() - cpuBefore;
    results.push({ ...g, ms: Date.now() - groupStart, cpuSeconds, cut: overBudget, counts: report?.counts, score, survivors, unexplained });
  };
  const cpuAtStart = childCpuSeconds();
  // Longest first (by the last whole run's minutes): with two lanes, a slow group started last would
  // leave one core idle while it finishes alone. Groups never measured keep their plan order, last.
  const minutesBefore = lastDurations();
  const waiting = [...groups].sort((a, b) => (minutesBefore[b.label] ?? 0) - (minutesBefore[a.label] ?? 0));
  await Promise.all(
    Array.from({ length: Math.min(parallel, waiting.length) }, async () => {
      for (let g = waiting.shift(); g; g = waiting.shift()) await runGroup(g);
    }),
  );
  // In plan order, however they finished.
  const order = (r) => groups.findIndex((g) => g.label === r.label);
  results.sort((a, b) => order(a) - order(b));

  const cpu = childCpuSeconds() - cpuAtStart;
  const load = require('node:os').loadavg().map((n) => n.toFixed(1)).join(' ');
  const cores = concurrencyPerGroup * parallel;
  console.log(`\n=== mutation scores (${minutes(Date.now() - started)} wall, ${parallel} group(s) at a time, ${minutes(cpu * 1000)} of CPU: about ${minutes((cpu * 1000) / cores)} on ${cores} idle cores; load now ${load})`);
  for (const r of results) {
    const state = r.cut ? 'CUT (over budget)' : pct(r.score);
    const groupCpu = r.cpuSeconds === undefined ? '' : `, ${minutes(r.cpuSeconds * 1000)} CPU`;
    console.log(`${r.label.padEnd(28)} ${state.padStart(8)}  ${String(r.survivors.length).padStart(3)} survived (${r.unexplained.length} unexplained)  ${minutes(r.ms)}${groupCpu}`);
    for (const s of r.unexplained) console.log(`    unexplained ${s.status} ${JSON.stringify(exactKey(s))}`);
  }

  // Per folder: the sum of its groups' counts (a group's files share a folder or are counted in each).
  const folders = new Map();
  for (const r of results.filter((result) => result.counts)) {
    const folder = folderOf(r.mutate[0]);
    const sum = folders.get(folder) ?? {};
    for (const [status, n] of Object.entries(r.counts)) sum[status] = (sum[status] ?? 0) + n;
    folders.set(folder, sum);
  }
  let failing = false;
  console.log('\nper folder (target):');
  for (const [folder, counts] of folders) {
    const score = scoreOf(counts);
    const below = score !== undefined && score < targetOf(folder);
    failing ||= below;
    console.log(`  ${folder.padEnd(16)} ${pct(score).padStart(8)}  (≥ ${targetOf(folder)} %)${below ? '  BELOW TARGET' : ''}`);
  }
  if (unplanned.length > 0) console.log(`\nin scope, not measured by any group:\n  ${unplanned.join('\n  ')}`);
  if (outOfScope.length > 0) console.log(`\nmeasured, outside stryker.config.json's scope: ${outOfScope.join(', ')}`);

  if (only.length === 0) saveDurations(results);
  mkdirSync(join(ROOT, 'reports', 'mutation'), { recursive: true });
  writeFileSync(join(ROOT, 'reports', 'mutation', 'summary.json'), JSON.stringify({ results, folders: Object.fromEntries(folders), unplanned }, null, 2));
  const unexplained = results.some((r) => r.unexplained.length > 0 || r.cut);
  return flag('--break') && (failing || unexplained) ? 1 : 0;
};

if (!existsSync(join(ROOT, 'node_modules', '@stryker-mutator', 'core'))) {
  console.error('mutate: @stryker-mutator/core is not installed (npm ci)');
  process.exit(1);
}
main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
