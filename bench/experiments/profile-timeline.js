#!/usr/bin/env node
'use strict';
// `node bench/experiments/profile-timeline.js CLIENT.cpuprofile SERVER.cpuprofile [BUCKET_MS=20]` (issue 20):
// the client's and the server's main threads side by side, from two V8 CPU profiles of one command
// (profile-commands.js leaves them in its --out folder: the command's own, and the server's
// CPU.*.0.001.cpuprofile). V8 stamps samples with the system's monotonic clock, the same in both
// processes, so their time lines line up. Prints per bucket of the client's run the share of each
// side's samples that were busy (not idle) and the client's three busiest functions: when the
// client runs alone (start-up), when both do, and when one waits for the other.
const fs = require('node:fs');
const { samplesOf, short } = require('../lib/cpuprofile');

const [clientFile, serverFile, bucketArg] = process.argv.slice(2);
if (!clientFile || !serverFile) {
  console.error('usage: profile-timeline.js CLIENT.cpuprofile SERVER.cpuprofile [BUCKET_MS]');
  process.exit(2);
}
const bucketUs = Number(bucketArg ?? 20) * 1000;

const load = (file) => {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { start: prof.startTime, end: prof.endTime, samples: samplesOf(prof) };
};
const idle = ({ frame }) => frame.functionName === '(idle)';
const inBucket = (samples, from) => samples.filter(({ atUs }) => atUs >= from && atUs < from + bucketUs);
const busyPercent = (samples) => (samples.length === 0 ? '   -' : `${String(Math.round((100 * samples.filter((sample) => !idle(sample)).length) / samples.length)).padStart(3)}%`);
const busiest = (samples) => {
  const counts = new Map();
  for (const sample of samples) {
    if (idle(sample)) continue;
    const where = short(sample.frame);
    counts.set(where, (counts.get(where) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([where, n]) => `${where} (${n})`).join(', ');
};

const client = load(clientFile);
const server = load(serverFile);
console.log('   ms   client  server   client busiest');
for (let from = client.start; from < client.end; from += bucketUs) {
  const mine = inBucket(client.samples, from);
  console.log(`${String(Math.round((from - client.start) / 1000)).padStart(5)}   ${busyPercent(mine)}    ${busyPercent(inBucket(server.samples, from))}    ${busiest(mine)}`);
}
