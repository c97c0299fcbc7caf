/**
 * Run in a child process by small-commits-process-life.test.ts, with nothing else to keep the
 * process alive: one commit; a second once the worker is idle; then a burst of 300 and, while the
 * worker is at that burst, one more (two batches in flight). Prints `first`, `second`, `burst`,
 * `last` as each is done, and at exit whether the worker was still there (not stopped by the idle
 * timer). Usage: commit-and-exit <folder>.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SmallCommits } from '../../../../src/storage/small-commits';

const folder = process.argv[2]!;
const commits = new SmallCommits();
const job = (name: string) => ({
  data: new Uint8Array(Buffer.from(name)),
  staging: join(folder, `.rxfer-part-${name}`),
  target: join(folder, name),
  folder,
  createOnly: false,
  measureReplaced: false,
});
const turn = () => new Promise((resolve) => setImmediate(resolve));

const main = async () => {
  await commits.commit(job('first'));
  console.log('first');
  // The worker is idle now, and lets the process exit; a new commit must hold it again until done.
  await turn();
  await commits.commit(job('second'));
  console.log('second');
  let burstDone = false;
  const burst = Promise.all(Array.from({ length: 300 }, (_, i) => commits.commit(job(`burst${i}`)))).then(() => (burstDone = true));
  // Once the worker is at the burst (its staging files appear), so that the last goes in a batch of its own.
  while (!burstDone && !readdirSync(folder).some((entry) => entry.startsWith('.rxfer-part-burst'))) await turn();
  const last = commits.commit(job('last'));
  await burst;
  console.log('burst');
  // The burst's reply came with this one still pending: the process must not have been let go.
  await last;
  console.log('last');
};

process.on('exit', () => console.log(JSON.stringify({ workerLeft: (commits as unknown as { worker?: unknown }).worker !== undefined })));
void main();
