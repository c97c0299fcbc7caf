'use strict';
// What the A/B experiments in bench/experiments/ share: their arguments and how they run a client.
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** The benchmark's clients, each run as its own process (as in run.js). */
const CLIENTS = {
  rxfer: path.join(__dirname, '../clients/rxfer-client.js'),
  net: path.join(__dirname, '../baselines/net-client.js'),
};

/**
 * `A_ROOT B_ROOT [rounds] [sha256|blake3] [more…]` → { A, B, rounds, hash, more }: two package roots
 * (with bin/ and dist/; copy one aside before rebuilding), rounds, the digest to negotiate, the rest.
 */
const abArgs = (argv, defaultRounds = 6) => {
  const [a, b, rounds, hash, ...more] = argv;
  if (!a || !b) throw new Error('usage: A_ROOT B_ROOT [rounds] [sha256|blake3] …');
  return { A: path.resolve(a), B: path.resolve(b), rounds: Number(rounds || defaultRounds), hash: hash || 'sha256', more };
};

/** Runs one client process (`nodeArgs` before its script) and returns its JSON line; throws on failure. */
const runClient = (client, spec, nodeArgs = []) => {
  const out = spawnSync(process.execPath, [...nodeArgs, CLIENTS[client], JSON.stringify(spec)], { encoding: 'utf8' });
  if (out.status) throw new Error(`${client} client failed: ${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop());
};

/** The median of a list of numbers (NaN for none). */
const median = (values) => (values.length ? [...values].sort((x, y) => x - y)[values.length >> 1] : NaN);

module.exports = { abArgs, runClient, median };
