'use strict';
// What the rxfer and baseline clients share beyond pool(): the 64-client load case and the process
// wrapper, so that both sides of a comparison measure and report the same way.
const fs = require('node:fs');
const crypto = require('node:crypto');
const { performance } = require('node:perf_hooks');

// `clients` workers, each `ops` times: PUT a random buffer, then GET it back, timing each.
// openWorker(k) → { put(name, buf), get(name) → Buffer, close?() }.
async function loadCase(spec, openWorker) {
  const latencies = [];
  const manifest = {};
  let mismatches = 0;
  const timed = async (work) => {
    const t = performance.now();
    const result = await work();
    latencies.push(performance.now() - t);
    return result;
  };
  const worker = async (k) => {
    const w = await openWorker(k);
    for (let i = 0; i < spec.ops; i++) {
      const name = `${spec.prefix}/c${k}-${i}`;
      const buf = crypto.randomBytes(spec.size);
      await timed(() => w.put(name, buf));
      const back = await timed(() => w.get(name));
      if (!back.equals(buf)) mismatches++;
      manifest[`c${k}-${i}`] = { size: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
    }
    await w.close?.();
  };
  await Promise.all(Array.from({ length: spec.clients }, (_, k) => worker(k)));
  fs.writeFileSync(spec.manifest, JSON.stringify(manifest));
  if (mismatches) throw new Error(`${mismatches} downloads differed from what was uploaded`);
  return { ops: latencies.length, latenciesMs: latencies };
}

// Runs ops[spec.op], prints one JSON line {ok, ms, cpuS, ...}; exits 1 on failure.
function runClient(ops, spec) {
  (async () => {
    const t0 = performance.now();
    const out = await ops[spec.op]();
    const ms = performance.now() - t0;
    const u = process.cpuUsage();
    process.stdout.write(JSON.stringify({ ok: true, ms, cpuS: (u.user + u.system) / 1e6, ...out }) + '\n');
  })().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
}

module.exports = { loadCase, runClient };
