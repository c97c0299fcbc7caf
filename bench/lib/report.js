'use strict';
// Turns the measured runs into latest.json, RESULTS.md and chart.svg (hand-written SVG, no deps).
const fs = require('node:fs');
const path = require('node:path');
const { median } = require('./util');

const CASE_TITLES = {
  big: '1. One big file, upload and download (MiB/s)',
  conc: '2b. Concurrent uploads (MiB/s, all streams together)',
  many: '3. Many files (files/s)',
  cmd: '3b. Whole commands as typed: put -r, identical re-run, get -r (files/s; the baseline is rsync)',
  load: '4. Many clients at once (operations/s)',
  startup: '5. CLI start-up (ms, lower is better)',
};
const BASELINE = { big: 'node-pipe', conc: 'node-pipe', many: 'node-pipe', cmd: 'rsync', load: 'node-pipe', startup: 'node-e0' };
const RXFER = { big: 'rxfer', conc: 'rxfer', many: 'rxfer', cmd: 'rxfer-cli', load: 'rxfer', startup: 'rxfer-help' };
const metricOf = (r) => (r.case === 'startup' ? r.seconds * 1000 : r.case === 'load' ? r.opsps : r.case === 'many' || r.case === 'cmd' ? r.filesps : r.mibps);
const UNIT = { big: 'MiB/s', conc: 'MiB/s', many: 'files/s', cmd: 'files/s', load: 'ops/s', startup: 'ms' };

const TARGETS = {
  big: '≥ 0.9× plain pipe',
  many: (v) => (v.includes('4KiB') && v.includes('up-shm') ? '≥ 5,000 files/s' : v.includes('1MiB') ? '≥ rsync' : ''),
  startup: '≤ 250 ms',
};

const COLORS = {
  rxfer: '#e8590c', 'rxfer-blake3': '#c92a2a', 'rxfer-tls': '#f08c00', 'rxfer-tls-blake3': '#e67700', 'rxfer-cli': '#f59f00', 'rxfer-upload': '#ffd43b', 'rxfer-help': '#e8590c',
  'node-pipe': '#1971c2', 'node-e0': '#1971c2', rsync: '#2f9e44', scp: '#7048e8', sftp: '#ae3ec9', vsftpd: '#495057',
};

const fmt = (x, unit) => {
  if (x === undefined || x === null || Number.isNaN(x)) return '–';
  if (unit === 'ms') return x.toFixed(0);
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
};
const r2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const mib = (kib) => (kib ? (kib / 1024).toFixed(0) : '–');

/** Groups runs by case/variant/tool and computes the statistics and ratios. */
function summarize(records) {
  const groups = new Map();
  for (const r of records) {
    const key = `${r.case}|${r.variant}|${r.tool}`;
    if (!groups.has(key)) groups.set(key, { case: r.case, variant: r.variant, tool: r.tool, label: r.toolLabel, kind: r.kind, runs: [] });
    groups.get(key).runs.push(r);
  }
  const rows = [...groups.values()].map((g) => {
    const vals = g.runs.map(metricOf);
    const ok = g.runs.every((r) => r.verified);
    const peakRss = Math.max(0, ...g.runs.map((r) => (r.server ? Math.max(r.server.hwmKiB || 0, r.server.peakTreeKiB || 0) : 0)));
    const row = {
      case: g.case, variant: g.variant, tool: g.tool, label: g.label, kind: g.kind, unit: UNIT[g.case],
      median: median(vals), min: Math.min(...vals), max: Math.max(...vals), n: vals.length, values: vals,
      rounds: g.runs.map((r) => r.round), verified: ok,
      serverPeakRssMiB: peakRss ? peakRss / 1024 : undefined,
      serverCpuS: g.runs[0].server ? median(g.runs.map((r) => r.server.cpuS)) : undefined,
      clientCpuS: g.runs[0].clientCpuS !== undefined ? median(g.runs.map((r) => r.clientCpuS ?? NaN)) : undefined,
      seconds: median(g.runs.map((r) => r.seconds)),
      otherLoadPct: median(g.runs.map((r) => r.otherLoadPct ?? 0)),
      maxOtherLoadPct: Math.max(...g.runs.map((r) => r.otherLoadPct ?? 0)),
    };
    if (g.case === 'load' && g.runs.every((r) => r.latencyMs)) {
      row.latencyMs = {
        p50: median(g.runs.map((r) => r.latencyMs.p50)), p99: median(g.runs.map((r) => r.latencyMs.p99)),
        max: Math.max(...g.runs.map((r) => r.latencyMs.max)),
      };
    }
    return row;
  });
  // ratios: rxfer's median over each tool's median, and the per-round (paired) ratios' range
  for (const row of rows) {
    const rx = rows.find((x) => x.case === row.case && x.variant === row.variant && x.tool === RXFER[row.case]);
    if (!rx || row === rx) continue;
    row.rxferOverThis = rx.median / row.median;
    row.pairedRatio = pairedRatio(rx, row);
  }
  return rows;
}

/** The ratios a / b of runs taken in the same round (back to back), summarised. */
function pairedRatio(a, b) {
  const paired = [];
  for (const run of a.values.keys()) {
    const j = b.rounds.indexOf(a.rounds[run]);
    if (j >= 0) paired.push(a.values[run] / b.values[j]);
  }
  return paired.length ? { median: median(paired), min: Math.min(...paired), max: Math.max(...paired) } : undefined;
}

/** The rxfer rows a headline compares with the baseline: the default (SHA-256) and the BLAKE3 option. */
const HEADLINE_RXFER = (c) => [RXFER[c], ...(c === 'big' || c === 'many' ? ['rxfer-blake3'] : [])];

// ---------------------------------------------------------------- Markdown
function markdown({ mode, peers, params, machine, rows, failures, problems, serverIdleRss, rawFile, findings }) {
  const out = [];
  const p = (s = '') => out.push(s);
  const cases = [...new Set(rows.map((r) => r.case))];
  p(`# rxfer benchmark results${mode === 'full' ? '' : ` (${mode})`}`);
  p();
  p(`Generated by \`node bench/run.js${mode === 'quick' ? ' --quick' : ''}${peers ? ' --peers' : ''}${machine.pinned ? ' --pin' : ''}\` on ${machine.date.slice(0, 16).replace('T', ' ')} UTC`);
  p(`in ${machine.wallSeconds} s. Raw runs: \`bench/${rawFile}\` (git-ignored); summary: \`latest.json\`; chart: [chart.svg](${mode === 'full' ? 'chart.svg' : 'chart.svg'}).`);
  p();
  p('![rxfer vs baselines](chart.svg)');
  p();
  p('## Headline: rxfer ÷ plain Node pipe (same run, alternating)');
  p();
  p('Ratio > 1: rxfer is faster (for start-up: slower). "paired" = the ratios of runs taken back to back in each round, min–max.');
  p('"other load %": CPU used by processes outside the benchmark during a run, as % of the machine (2 cores = 100 %);');
  p('rows where it is high measured other sessions\' work as much as rxfer.');
  p();
  p('| case | variant | rxfer | plain Node pipe | ratio (medians) | paired min–max | target | other load % (max) |');
  p('|---|---|---:|---:|---:|---:|---|---:|');
  for (const row of rows) {
    if (row.tool !== BASELINE[row.case]) continue;
    const t = TARGETS[row.case];
    const target = typeof t === 'function' ? t(row.variant) : t ?? '';
    for (const tool of HEADLINE_RXFER(row.case)) {
      const rx = rows.find((x) => x.case === row.case && x.variant === row.variant && x.tool === tool);
      if (!rx) continue;
      const paired = pairedRatio(rx, row);
      const variant = tool === 'rxfer-blake3' ? `${row.variant}, BLAKE3` : row.variant;
      p(`| ${row.case} | ${variant} | ${fmt(rx.median, row.unit)} ${row.unit} | ${fmt(row.median, row.unit)} | **${r2(rx.median / row.median)}** | ${paired ? `${r2(paired.min)}–${r2(paired.max)}` : '–'} | ${target} | ${Math.max(rx.maxOtherLoadPct, row.maxOtherLoadPct).toFixed(0)} |`);
    }
  }
  p();
  if (findings) { p(findings.trim()); p(); }
  for (const c of cases) {
    p(`## ${CASE_TITLES[c]}`);
    p();
    const rs = rows.filter((r) => r.case === c);
    if (c === 'load') {
      p('| variant | tool | ops/s median | min–max | runs | latency p50 ms | p99 ms | max ms | rxfer ÷ this | server peak RSS MiB | server CPU s/run | client CPU s/run | other load % |');
      p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rs) {
        p(`| ${r.variant} | ${r.label}${r.verified ? '' : ' ✗ WRONG BYTES'} | **${fmt(r.median)}** | ${fmt(r.min)}–${fmt(r.max)} | ${r.n} | ${r.latencyMs?.p50.toFixed(1) ?? "–"} | ${r.latencyMs?.p99.toFixed(1) ?? "–"} | ${r.latencyMs?.max.toFixed(1) ?? "–"} | ${r.rxferOverThis ? r2(r.rxferOverThis) : ''} | ${r.serverPeakRssMiB?.toFixed(0) ?? '–'} | ${r.serverCpuS?.toFixed(2) ?? ''} | ${r.clientCpuS?.toFixed(2) ?? ''} | ${r.otherLoadPct.toFixed(0)} |`);
      }
    } else if (c === 'startup') {
      p('| command | ms median | min–max | runs | rxfer ÷ this | other load % |');
      p('|---|---:|---:|---:|---:|---:|');
      for (const r of rs) p(`| \`${r.label}\` | **${fmt(r.median, 'ms')}** | ${fmt(r.min, 'ms')}–${fmt(r.max, 'ms')} | ${r.n} | ${r.rxferOverThis ? r2(r.rxferOverThis) : ''} | ${r.otherLoadPct.toFixed(0)} |`);
    } else {
      p(`| variant | tool | ${UNIT[c]} median | min–max | runs | s median | rxfer ÷ this | paired min–max | server peak RSS MiB | server CPU s/run | client CPU s/run | other load % |`);
      p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rs) {
        p(`| ${r.variant} | ${r.label}${r.verified ? '' : ' ✗ WRONG BYTES'} | **${fmt(r.median)}** | ${fmt(r.min)}–${fmt(r.max)} | ${r.n} | ${r.seconds.toFixed(2)} | ${r.rxferOverThis ? r2(r.rxferOverThis) : ''} | ${r.pairedRatio ? `${r2(r.pairedRatio.min)}–${r2(r.pairedRatio.max)}` : ''} | ${r.serverPeakRssMiB?.toFixed(0) ?? '–'} | ${r.serverCpuS?.toFixed(2) ?? ''} | ${r.clientCpuS?.toFixed(2) ?? ''} | ${r.otherLoadPct.toFixed(0)} |`);
      }
    }
    p();
  }
  p('## 2. Server memory');
  p();
  p('Peak RSS of the server process during each case (kernel VmHWM, reset with `clear_refs` before every run, so it is the');
  p('exact peak of that run; the max over the runs). Forking peers (sshd, vsftpd, rsync): sum of VmHWM over the process');
  p('tree, sampled every 50 ms. Idle RSS right after start-up: ' + Object.entries(serverIdleRss).map(([k, v]) => `${k} ${mib(v)} MiB`).join(', ') + '.');
  p('Target: ≤ 128 MiB flat whatever the file size; ≤ 128 MiB + 8 MiB per concurrent transfer.');
  p();
  p('| case | variant | tool | peak RSS MiB | target MiB |');
  p('|---|---|---|---:|---:|');
  for (const r of rows.filter((x) => x.serverPeakRssMiB !== undefined && ['big', 'conc', 'load'].includes(x.case))) {
    const target = r.case === 'big' ? 128 : r.case === 'conc' ? 128 + 8 * params.concN : r.case === 'load' ? 128 + 8 * params.loadClients : '';
    p(`| ${r.case} | ${r.variant} | ${r.label} | ${r.tool === 'rxfer' ? '**' : ''}${r.serverPeakRssMiB.toFixed(0)}${r.tool === 'rxfer' ? '**' : ''} | ${r.tool === 'rxfer' ? target : ''} |`);
  }
  p();
  p('## Verification and problems');
  p();
  if (!failures.length) p('Every measured run\'s output matched its source (size and SHA-256 of every file).');
  for (const f of failures) p(`- **WRONG BYTES** ${f.case}/${f.variant}/${f.tool} round ${f.round}: ${(f.errors || []).join('; ')}`);
  for (const pr of problems) p(`- ${pr}`);
  p();
  p('## Machine');
  p();
  p(`- CPU: ${machine.cpu}; memory ${machine.memory}; kernel ${machine.kernel}; ${machine.os}; Node ${machine.node}`);
  p(`- Disk destination: ${machine.disk}; tmpfs destination: /dev/shm`);
  p(`- Load average at start ${machine.loadavgStart}, at end ${machine.loadavgEnd} (other work on this shared machine shows here)`);
  p(`- rxfer ${machine.rxferVersion} from \`${machine.rxferRoot}\`, git ${machine.rxferGit}; ${machine.dist}${machine.label ? `; label: ${machine.label}` : ''}`);
  if (machine.peerVersions) p(`- Peers: ${Object.entries(machine.peerVersions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  p();
  p('## Method');
  p();
  p(`- Sizes: big file ${params.bigMiB} MiB of random data; concurrent case ${params.concN} × ${params.concMiB} MiB; many files ${params.n4k} × 4 KiB and`);
  p(`  ${params.n1m} × 1 MiB; load ${params.loadClients} clients × ${params.loadOps} × (upload + download) of 4 KiB. Runs per case: ${params.runs}`);
  p(`  (start-up: ${params.startupRuns}), warmup rounds ${params.warmup}. Sources live on tmpfs.`);
  p('- Each round runs every tool once per variant, back to back, the order rotating from round to round.');
  p('- Servers: `rxfer serve` (bin/rxfer.js with the node flags it execs node with, as `rxfer` runs for users; compiled dist/, log level warn) and the baselines, each its own process, started');
  p('  once per destination (a long-running server, as in production). Clients: a fresh process per run for every tool');
  p('  (`bench/clients/rxfer-client.js` for rxfer, `bench/baselines/net-client.js` for the plain pipe, the tools\' own');
  p('  binaries for peers). Timed: the client process from spawn to exit; for the disk destination plus `sync -f`.');
  p('- rxfer always verifies end to end (SHA-256 trailer on upload, digest announced before a download; the client library');
  p('  writes downloads to a staging file, fsyncs and renames). The plain pipe does none of that: it is the ceiling for a');
  p('  Node server, not a like-for-like tool.');
  p('- Upload destination `<dest>/root/up/…`, download source `<dest>/root/src.bin` (put there by rxfer before the runs,');
  p('  so its digest sidecar exists), download destination `<dest>/client/…`. Outputs are removed before each run.');
  p('- Many files: rxfer uploads with `client.uploadBuffer` (read file, then send; pipelined on one connection, 64 in');
  p('  flight) and, as a second row, `client.upload` per file (a file up to 1 MiB that the server would not keep for a');
  p('  resume is read whole and pipelined the same way; from the resume size on, 1 MiB here, each file asks `RESUME`');
  p('  and waits for `OK file recv`: two round trips); downloads with `client.download` per file pipelined on one');
  p('  connection. The plain pipe opens one connection');
  p(`  per file, ${params.netConc} at a time.`);
  p('- After every run its output is compared with the source: size and SHA-256 of every file. A mismatch makes the');
  p('  benchmark exit 1; times are never asserted.');
  p('- Re-run: `npm run build`, then `node bench/run.js` (this file, ~8 min), `--quick` (under a minute, into');
  p('  `results/quick/`), `--peers` (apt-get installs rsync, OpenSSH, vsftpd, curl if missing; all servers on 127.0.0.1');
  p('  and stopped by pid), `--only big,conc,many,load,startup`, `--runs N`, `--pin`, `--rxfer DIR` (measure another build),');
  p('  `--rereport` (rebuild this file from `results/latest.json` after editing `findings.md`). Profiles: `node bench/profile.js`.');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- SVG chart
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function chart(rows, { title }) {
  const panels = [];
  const add = (name, rs, opts = {}) => {
    const variants = [...new Set(rs.map((r) => r.variant))];
    if (variants.length) panels.push({ name, variants, rs, ...opts });
  };
  add('One big file — MiB/s (higher is better)', rows.filter((r) => r.case === 'big'));
  add('Concurrent uploads — MiB/s total', rows.filter((r) => r.case === 'conc'));
  add('Many files — files/s (higher is better; bars scaled per row)', rows.filter((r) => r.case === 'many'), { perRow: true });
  add('Whole commands — files/s (higher is better; bars scaled per row)', rows.filter((r) => r.case === 'cmd'), { perRow: true });
  add('Many clients — operations/s', rows.filter((r) => r.case === 'load'));
  add('Server peak RSS — MiB (lower is better)', rows.filter((r) => ['big', 'conc', 'load'].includes(r.case) && r.serverPeakRssMiB !== undefined).map((r) => ({ ...r, variant: `${r.case} ${r.variant}`, median: r.serverPeakRssMiB, min: undefined, max: undefined, unit: 'MiB', rxferOverThis: undefined })));
  add('CLI start-up — ms (lower is better)', rows.filter((r) => r.case === 'startup').map((r) => ({ ...r, variant: 'start-up' })));

  const W = 980;
  const labelW = 190;
  const valueW = 90;
  const barMax = W - labelW - valueW - 20;
  const barH = 11;
  let y = 52;
  const parts = [];
  const tools = [...new Set(rows.map((r) => r.tool))];
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y}" class="h">${esc(panel.name)}</text>`);
    y += 10;
    const maxAll = Math.max(...panel.rs.map((r) => Math.max(r.median, r.max ?? 0)));
    for (const v of panel.variants) {
      const rs = panel.rs.filter((r) => r.variant === v);
      const max = panel.perRow ? Math.max(...rs.map((r) => Math.max(r.median, r.max ?? 0))) : maxAll;
      const h = rs.length * (barH + 2) + 8;
      parts.push(`<text x="${labelW - 8}" y="${y + h / 2 + 2}" class="l" text-anchor="end">${esc(v)}</text>`);
      rs.forEach((r, i) => {
        const by = y + 4 + i * (barH + 2);
        const w = Math.max(1, (r.median / max) * barMax);
        const color = COLORS[r.tool] ?? '#868e96';
        parts.push(`<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"><title>${esc(`${r.label}: ${fmt(r.median, r.unit)} ${r.unit ?? ''}`)}</title></rect>`);
        if (r.min !== undefined && r.max !== undefined && r.n > 1) {
          const x1 = labelW + (r.min / max) * barMax;
          const x2 = labelW + (r.max / max) * barMax;
          parts.push(`<line x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${by + barH / 2}" y2="${by + barH / 2}" class="w"/>`);
        }
        const ratio = r.rxferOverThis && r.kind !== 'rxfer' ? `  (rxfer ${r2(r.rxferOverThis)}×)` : '';
        parts.push(`<text x="${labelW + w + 4}" y="${by + barH - 1}" class="v">${esc(fmt(r.median, r.unit))}${esc(ratio)}</text>`);
      });
      y += h;
    }
    y += 22;
  }
  // legend
  let lx = 10;
  const ly = y;
  for (const t of tools) {
    const label = rows.find((r) => r.tool === t)?.label ?? t;
    const short = t;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[t] ?? '#868e96'}"/><text x="${lx + 14}" y="${ly}" class="l"><title>${esc(label)}</title>${esc(short)}</text>`);
    lx += 14 + short.length * 7 + 16;
  }
  y += 20;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">
<style>.h{font-size:14px;font-weight:bold;fill:#212529}.l{font-size:11px;fill:#343a40}.v{font-size:10px;fill:#212529}.w{stroke:#000;stroke-width:1;opacity:.55}.t{font-size:16px;font-weight:bold}</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" class="t">${esc(title)}</text>
${parts.join('\n')}
</svg>
`;
}

function writeReport(o) {
  fs.mkdirSync(o.outDir, { recursive: true });
  const rows = summarize(o.records);
  const findings = o.findingsFile && fs.existsSync(o.findingsFile) ? fs.readFileSync(o.findingsFile, 'utf8') : undefined;
  const json = {
    mode: o.mode, peers: o.peers, params: o.params, machine: o.machine, serverIdleRssKiB: o.serverIdleRss, rawFile: o.rawFile,
    rows, failures: o.failures, problems: o.problems, records: o.records,
  };
  const files = [];
  const jsonFile = o.mode === 'full' ? path.join(o.outDir, 'results', 'latest.json') : path.join(o.outDir, 'latest.json');
  fs.mkdirSync(path.dirname(jsonFile), { recursive: true });
  fs.writeFileSync(jsonFile, JSON.stringify(json, null, 1) + '\n');
  files.push(jsonFile);
  const md = path.join(o.outDir, 'RESULTS.md');
  fs.writeFileSync(md, markdown({ ...o, rows, findings }));
  files.push(md);
  const svg = path.join(o.outDir, 'chart.svg');
  fs.writeFileSync(svg, chart(rows, { title: `rxfer vs baselines, ${o.machine.date.slice(0, 10)} (${o.mode}${o.peers ? ', peers' : ''}; orange = rxfer, blue = plain Node pipe; whiskers = min–max)` }));
  files.push(svg);
  return files.map((f) => path.relative(process.cwd(), f));
}

/** Rebuilds RESULTS.md and chart.svg from a latest.json (e.g. after editing findings.md). */
function rereport(jsonFile, outDir, findingsFile) {
  const j = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  return writeReport({
    outDir, mode: j.mode, peers: j.peers, params: j.params, machine: j.machine, records: j.records, failures: j.failures,
    problems: j.problems, serverIdleRss: j.serverIdleRssKiB, rawFile: j.rawFile, findingsFile,
  });
}

module.exports = { writeReport, summarize, rereport };
