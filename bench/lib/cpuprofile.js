'use strict';
// Reads a V8 .cpuprofile (node --cpu-prof) and ranks where the time went: self time per function,
// and per bucket (GC, idle, rxjs, pino, rxfer's own code, Node internals by module, native).
const fs = require('node:fs');

const bucketOf = (cf) => {
  const { functionName: fn, url } = cf;
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return '(program): V8/native not attributed to JS';
  if (fn === '(root)') return '(root)';
  if (!url) return `native: ${fn || '(anonymous)'}`;
  if (url.includes('node_modules/rxjs')) return 'rxjs';
  if (url.includes('node_modules/pino') || url.includes('sonic-boom') || url.includes('thread-stream')) return 'pino (logging)';
  if (url.includes('node_modules/inversify') || url.includes('@inversifyjs')) return 'inversify';
  if (url.includes('node_modules/zod')) return 'zod';
  if (url.includes('node_modules/')) return 'other npm: ' + url.split('node_modules/').pop().split('/')[0];
  if (url.includes('/dist/')) return 'rxfer: ' + url.split('/dist/').pop();
  if (url.startsWith('node:')) {
    const m = url.replace(/^node:(internal\/)?/, '');
    if (m.startsWith('streams/')) return 'node streams';
    if (m.startsWith('fs') || m === 'fs') return 'node fs';
    if (m.startsWith('crypto')) return 'node crypto';
    if (m === 'net' || m.startsWith('stream_base') || m.startsWith('net')) return 'node net';
    if (m.startsWith('process/task_queues') || m.startsWith('timers') || m.startsWith('async_hooks')) return 'node event loop / promises';
    return 'node ' + m.split('/')[0];
  }
  return 'other: ' + url;
};

const short = (cf) => {
  const file = cf.url ? cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '') : '';
  return `${cf.functionName || '(anonymous)'}${file ? ` ${file}:${cf.lineNumber + 1}` : ''}`;
};

/**
 * A profile's samples in order, each with its time (µs, on the monotonic clock every process's
 * profile shares), the call frame it was taken in, its node's id, and how long it stood (the delta to
 * the next sample).
 */
function samplesOf(prof) {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const { samples, timeDeltas } = prof;
  const out = [];
  let t = prof.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    out.push({ atUs: t, id: samples[i], frame: byId.get(samples[i]).callFrame, standsUs: Math.max(0, timeDeltas[i + 1] ?? 0) });
  }
  return out;
}

/**
 * window: {fromUs, toUs} on the monotonic clock (process.hrtime, which V8's profile timestamps share):
 * only samples taken in that span count, e.g. while the measured client ran, not the server's start-up.
 */
function analyze(file, top = 25, window = {}) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const from = window.fromUs ?? -Infinity;
  const to = window.toUs ?? Infinity;
  for (const { atUs, id, standsUs } of samplesOf(prof)) {
    if (atUs < from || atUs > to) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + standsUs);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const fnSelf = new Map();
  const bucketSelf = new Map();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id).callFrame;
    const k = short(cf);
    fnSelf.set(k, (fnSelf.get(k) ?? 0) + us);
    const b = bucketOf(cf);
    bucketSelf.set(b, (bucketSelf.get(b) ?? 0) + us);
  }
  const idle = bucketSelf.get('idle (waiting for I/O)') ?? 0;
  const busy = total - idle;
  const rank = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  const lines = [];
  lines.push(`profile ${file}${window.fromUs ? ' (only samples taken while the client ran)' : ''}`);
  lines.push(`sampled ${(total / 1e6).toFixed(2)} s, of which busy (not idle) ${(busy / 1e6).toFixed(2)} s`);
  lines.push('');
  lines.push('self time by bucket (% of busy time):');
  for (const [k, us] of rank(bucketSelf).slice(0, 30)) {
    if (k.startsWith('idle')) continue;
    lines.push(`  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
  }
  lines.push('');
  lines.push(`top ${top} functions by self time (% of busy time):`);
  for (const [k, us] of rank(fnSelf).filter(([k]) => !k.startsWith('(idle)')).slice(0, top)) {
    lines.push(`  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
  }
  return {
    text: lines.join('\n'),
    totalS: total / 1e6,
    busyS: busy / 1e6,
    buckets: Object.fromEntries(rank(bucketSelf).map(([k, v]) => [k, v / 1e6])),
    functions: rank(fnSelf).slice(0, top).map(([k, v]) => ({ fn: k, s: v / 1e6 })),
  };
}

module.exports = { analyze, samplesOf, short };

if (require.main === module) {
  for (const f of process.argv.slice(2)) console.log(analyze(f, 30).text + '\n');
}
