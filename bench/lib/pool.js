'use strict';
// Runs fn over items with at most `conc` in flight. Shared by the rxfer and baseline clients so
// both sides of a comparison schedule their work the same way (kept out of util.js: these are
// loaded by the timed client processes).
async function pool(items, conc, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, conc) }, worker));
}

module.exports = { pool };
