'use strict';
// Preloaded into an `rxfer serve` process by scripts/workload.js (node --require) for issue 17's
// load, soak and kill-loop runs, never by users: answers its parent's IPC message with the
// process's own figures, so leaks are measured from inside the server and not guessed from outside.
// It counts live timers itself, unref'd ones included (process.getActiveResourcesInfo() lists only
// ref'd timers, and the server's guards are unref'd). The IPC channel is unref'd, so it never keeps
// the server alive.
const fs = require('node:fs');

const live = new Set();
const original = { setTimeout, setInterval, clearTimeout, clearInterval };
global.setTimeout = function (fn, ms, ...args) {
  const timer = original.setTimeout(
    (...fired) => {
      live.delete(timer);
      fn(...fired);
    },
    ms,
    ...args,
  );
  live.add(timer);
  return timer;
};
global.setInterval = function (...args) {
  const timer = original.setInterval(...args);
  live.add(timer);
  return timer;
};
global.clearTimeout = function (timer) {
  live.delete(timer);
  return original.clearTimeout(timer);
};
global.clearInterval = function (timer) {
  live.delete(timer);
  return original.clearInterval(timer);
};

if (process.send) {
  process.channel?.unref();
  // The parent (a test, the soak) is gone: a server started for it stops by itself.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.on('message', (message) => {
    if (!message || typeof message.id !== 'number') return;
    if (message.gc && global.gc) {
      // Twice: the first pass queues finalizers that free more on the second.
      global.gc();
      global.gc();
    }
    const memory = process.memoryUsage();
    const handles = {};
    for (const kind of process.getActiveResourcesInfo()) handles[kind] = (handles[kind] ?? 0) + 1;
    process.send({
      id: message.id,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      external: memory.external,
      fds: fs.readdirSync('/proc/self/fd').length,
      timers: live.size,
      handles,
    });
  });
}
