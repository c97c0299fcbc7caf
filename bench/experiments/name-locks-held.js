#!/usr/bin/env node
'use strict';
// `node bench/experiments/name-locks-held.js A_ROOT [B_ROOT]` (issue 20): in-process, no I/O. Takes
// 2,000 uncontended NameLocks while N others are held (256, 4,096, 16,384: a BATCH keeps a few
// hundred commits in flight per connection; thousands wait at once only when many clients meet a slow
// disk), with each build's dist/storage/name-locks.js, alternating. Prints milliseconds per 2,000.
const path = require('node:path');

const roots = process.argv.slice(2).map((p) => path.resolve(p));
if (roots.length === 0) throw new Error('usage: name-locks-held.js A_ROOT [B_ROOT]');

const run = async (root, held) => {
  const { NameLocks } = require(path.join(root, 'dist/storage/name-locks.js'));
  const locks = new NameLocks();
  const releases = [];
  for (let i = 0; i < held; i++) {
    let release;
    const holding = new Promise((resolve) => (release = resolve));
    releases.push(release);
    locks.with([`/srv/root/user${i % 64}/tree/f${i}`], () => holding);
  }
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: 2000 }, (_, i) => locks.with([`/srv/root/other${i % 64}/f${i}`], async () => i)));
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  releases.forEach((release) => release());
  return ms;
};

(async () => {
  for (const held of [256, 4096, 16384]) {
    for (let round = 0; round < 2; round++) {
      for (const root of roots) console.log(`held ${String(held).padStart(5)}  ${root}: 2,000 locks in ${(await run(root, held)).toFixed(1)} ms`);
    }
  }
})();
