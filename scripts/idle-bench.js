'use strict';
// What idle connections cost an `rxfer serve` process (issue 17): its RSS after gc with `idle`
// connections open (each greeted, then silent) against none, per connection; and a benchmark, not a
// test: how fast one upload+download runs beside them against alone (medians of `rounds` runs,
// alternating, on whatever else the machine is doing). Used by scripts/soak.js and the load test.
const net = require('node:net');
const { MiB, makeContent, loadClientLibrary } = require('./workload');

/** Opens `count` connections and resolves once each has its greeting line. */
const openIdle = async (port, count) => {
  const sockets = [];
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, () =>
        new Promise((resolve, reject) => {
          const socket = net.connect({ port, host: '127.0.0.1' });
          sockets.push(socket);
          let seen = '';
          const onData = (chunk) => {
            seen += chunk.toString('latin1');
            if (!seen.includes('\n')) return;
            socket.off('data', onData);
            if (!seen.startsWith('OK ')) return reject(new Error(`connection ${sockets.length} refused: ${seen.trim()}`));
            resolve(socket);
          };
          socket.on('data', onData);
          socket.once('error', reject);
        }),
      ),
    );
    void opened;
  }
  return sockets;
};

/** MiB/s of one upload then download of `data` (verified by the client) on a fresh connection. */
const transferRate = async (port, name, data) => {
  const { RxferClient } = loadClientLibrary();
  const client = await RxferClient.connect({ host: '127.0.0.1', port });
  try {
    const started = performance.now();
    await client.uploadBuffer(name, data);
    const back = await client.downloadBuffer(name);
    const seconds = (performance.now() - started) / 1000;
    if (!back.data.equals(data)) throw new Error(`${name} came back different`);
    return (2 * data.length) / MiB / seconds;
  } finally {
    await client.quit().catch(() => client.close());
  }
};

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/**
 * `server` is a handle from startServer. Returns the RSS and heap figures (bytes), KiB per idle connection,
 * and the transfer rates (MiB/s) alone and beside the idle connections, with their ratio.
 */
/** A probe once every connection closed before has left the server (its descriptors are back to `fds`), settled. */
const probeOnceClosed = async (server, fds) => {
  let probe = await server.probe();
  for (let waited = 0; probe.fds > fds && waited < 15_000; waited += 200) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    probe = await server.probe();
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  return server.probe();
};

/**
 * The JS heap `idle` connections hold, in KiB each, measured `rounds` times: each the heap after gc with
 * them open against just before they opened. One such measurement moved by ±20 KiB a connection between
 * runs (−24 to +25, against ≈ 17 from heap snapshots: whatever else the heap held or let go between the
 * two probes), and the load test's bound failed on a one-off; the caller takes the median.
 */
const heapRoundsKiB = async (server, idle, rounds, fds) => {
  const each = [];
  for (let round = 0; round < rounds; round++) {
    const before = await probeOnceClosed(server, fds);
    const sockets = await openIdle(server.port, idle);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      each.push(((await server.probe()).heapUsed - before.heapUsed) / idle / 1024);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  }
  return each;
};

const idleConnectionsBench = async (server, { idle = 1000, transferMiB = 64, rounds = 3, measureSpeed = true, heapRounds = 3 } = {}) => {
  const data = makeContent(transferMiB * MiB);
  const alone = [];
  const beside = [];
  // A first transfer warms the server up (JIT, buffers) so that neither side of the ratio pays it.
  if (measureSpeed) await transferRate(server.port, 'bench/warm-up.bin', data);
  // So do `idle` connections opened and closed once: V8 grows its young generation (up to 32 MiB of
  // semispaces) under the first burst of allocations and keeps it, a one-off cost that would
  // otherwise be charged to each connection (measured: 48 KiB each the first time, 30 the next).
  const initial = await server.probe();
  for (const socket of await openIdle(server.port, idle)) socket.destroy();
  // Measure from a server that has closed every one of them (a fixed pause once left a few open,
  // which counted against the connections measured next).
  const before = await probeOnceClosed(server, initial.fds);
  let sockets = [];
  try {
    sockets = await openIdle(server.port, idle);
    // Let the server finish setting the sessions up before measuring.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const withIdle = await server.probe();
    if (measureSpeed) {
      for (let round = 0; round < rounds; round++) {
        beside.push(await transferRate(server.port, 'bench/beside.bin', data));
        // Alone means alone: the idle connections are closed for it and opened again after.
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => setTimeout(resolve, 300));
        alone.push(await transferRate(server.port, 'bench/alone.bin', data));
        if (round < rounds - 1) sockets = await openIdle(server.port, idle);
      }
    }
    const perConnectionKiB = (withIdle.rss - before.rss) / idle / 1024;
    for (const socket of sockets) socket.destroy();
    // The JS heap alone, where what a session builds for itself shows: this measurement and
    // heapRounds − 1 more, their median (see heapRoundsKiB).
    const heapEachKiB = [(withIdle.heapUsed - before.heapUsed) / idle / 1024, ...(await heapRoundsKiB(server, idle, heapRounds - 1, initial.fds))];
    const heapPerConnectionKiB = median(heapEachKiB);
    const aloneRate = measureSpeed ? median(alone) : NaN;
    const besideRate = measureSpeed ? median(beside) : NaN;
    return {
      idle,
      transferMiB,
      rssBefore: before.rss,
      rssWith: withIdle.rss,
      fdsBefore: before.fds,
      fdsWith: withIdle.fds,
      perConnectionKiB,
      heapBefore: before.heapUsed,
      heapWith: withIdle.heapUsed,
      heapPerConnectionKiB,
      heapEachKiB,
      alone: aloneRate,
      beside: besideRate,
      ratio: besideRate / aloneRate,
      rounds: { alone, beside },
    };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
};

module.exports = { idleConnectionsBench, openIdle };
