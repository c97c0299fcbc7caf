'use strict';
// Preloaded (`node -r`) by alloc-commands.js into a CLI command: samples every JavaScript allocation
// of the process, including the objects that young- and old-generation collections later freed
// (`--heap-prof` keeps only what is still alive at exit, which says nothing of garbage), and at
// exit appends the total in bytes, one line, to $ALLOC_OUT.
const inspector = require('node:inspector');
const fs = require('node:fs');

const session = new inspector.Session();
session.connect();
session.post('HeapProfiler.enable');
session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.on('exit', () => {
  // On the main thread the session answers synchronously, so this runs before the process ends.
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) return;
    let total = 0;
    const add = (node) => {
      total += node.selfSize;
      for (const child of node.children) add(child);
    };
    add(result.profile.head);
    fs.appendFileSync(process.env.ALLOC_OUT, `${total}\n`);
  });
});
