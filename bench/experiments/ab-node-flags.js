#!/usr/bin/env node
'use strict';
// `node bench/experiments/ab-node-flags.js ROUNDS 'FLAGS A' 'FLAGS B' … [--big MiB] [--n 2000] [--kib 4] [--rxfer DIR]`
// (issue 20): the same build's CLI started with different node/V8 flags (each set given whole, e.g.
// '--no-concurrent-sweeping --expose-gc --max-opt=1'), against one `rxfer serve` on tmpfs, the sets
// alternating in every round (the order rotating). Without --big: `put -r` of a fresh tree of N
// files, its identical re-run and `get -r`; with --big: one file of that many MiB put and got back
// (a new name each time, so no identical-file skip). Prints per set and step the median wall time and
// the median CPU seconds of client and server. Every download is compared with its source.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { median } = require('../lib/ab');
const S = require('../lib/servers');
const U = require('../lib/util');

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? def : argv.splice(i, 2)[1];
};
const BIG = Number(opt('big', 0));
const N = Number(opt('n', 2000));
const KIB = Number(opt('kib', 4));
const ROOT = path.resolve(opt('rxfer', path.join(__dirname, '../..')));
const rounds = Number(argv[0]);
const sets = argv.slice(1).map((s) => s.split(' ').filter(Boolean));
if (!(rounds > 0) || sets.length === 0) {
  console.error("usage: ab-node-flags.js ROUNDS 'FLAGS A' 'FLAGS B' … [--big MiB] [--n 2000] [--kib 4]");
  process.exit(2);
}

(async () => {
  const work = S.workFolder('ab-flags');
  const src = path.join(work, BIG ? 'big.bin' : 'src');
  const manifest = BIG ? undefined : U.writeRandomTree(src, N, KIB * 1024);
  if (BIG) spawnSync('head', ['-c', String(BIG * 1024 * 1024), '/dev/urandom'], { stdio: ['ignore', fs.openSync(src, 'w'), 'inherit'] });
  const root = path.join(work, 'root');
  fs.mkdirSync(root);
  const server = await S.startRxfer({ rxferRoot: ROOT, root, workDir: work, tag: 'flags' });
  const results = sets.map(() => ({}));
  let wrong = 0;
  const run = (i, args, step) => {
    const client0 = U.reapedChildrenCpuSeconds();
    const server0 = U.cpuSeconds(server.pid);
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [...sets[i], path.join(ROOT, 'bin/rxfer.js'), ...args, '-p', String(server.port), '-q'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${sets[i].join(' ')} ${args.join(' ')}: ${r.stderr}`);
    const x = (results[i][step] ??= { wall: [], client: [], server: [] });
    x.wall.push(Number(process.hrtime.bigint() - t) / 1e9);
    x.client.push(U.reapedChildrenCpuSeconds() - client0);
    x.server.push(U.cpuSeconds(server.pid) - server0);
  };
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sets.length; k++) {
      const i = (k + r) % sets.length;
      const out = path.join(work, 'out');
      fs.rmSync(out, { recursive: true, force: true });
      if (BIG) {
        run(i, ['put', src, `big-${r}-${i}.bin`], 'put');
        run(i, ['get', `big-${r}-${i}.bin`, out], 'get');
        if ((await U.sha256File(out)) !== (await U.sha256File(src))) wrong++;
      } else {
        run(i, ['put', '-r', src, `t${r}-${i}`], 'put -r');
        run(i, ['put', '-r', src, `t${r}-${i}`], 're-run');
        run(i, ['get', '-r', `t${r}-${i}`, out], 'get -r');
        wrong += (await U.checkTree(path.join(out, `t${r}-${i}`), manifest)).length;
      }
    }
  }
  console.log(`${BIG ? `one file of ${BIG} MiB` : `${N} × ${KIB} KiB`}, ${rounds} rounds, ${ROOT}; load average ${require('node:os').loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const [i, set] of sets.entries()) {
    for (const [step, x] of Object.entries(results[i])) {
      const rate = BIG ? `${(BIG / median(x.wall)).toFixed(0)} MiB/s` : `${(N / median(x.wall)).toFixed(0)} files/s`;
      console.log(`${(set.join(' ') || '(no flags)').padEnd(56)} ${step.padEnd(7)} ${median(x.wall).toFixed(2)} s (${rate})  CPU s client ${median(x.client).toFixed(2)} server ${median(x.server).toFixed(2)}`);
    }
  }
  if (wrong) {
    console.log(`${wrong} files came back wrong`);
    process.exitCode = 1;
  }
  await S.stopAll();
})().catch((err) => {
  console.error(err);
  process.exitCode = 2;
});
