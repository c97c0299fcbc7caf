import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../helpers/cli';
import { canRunServerProcesses, killLoopScript } from './support/scripts';

/**
 * Issue 17, server kill loop, bounded form (the long form: `node scripts/kill-loop.js --kills 20`).
 * A real `rxfer serve` process under a mixed workload of 12 clients is SIGKILLed 8 times at random
 * moments and restarted on the same root. Every round: it starts; no file under a real name is
 * partial (the files describe their own length and digest); after a restart nothing is staged and
 * every kept upload is a true prefix of an upload in flight at a kill (one is resumed for real); the
 * metadata folder stays bounded by the pool of names. The script gathers the problems; none may be.
 */
const describeIfProc = canRunServerProcesses() ? describe : describe.skip;

describeIfProc('issue 17: a server SIGKILLed 8 times under a mixed workload', () => {
  let base: string;
  // Compiling dist/ (only when src/ is newer: never in CI, where `npm ci` built it) can take a while.
  beforeAll(() => ensureBuilt(), 240_000);
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'rxfer-kill-loop-test-'));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  test('starts every time; no partial file under a real name; kept uploads resumable; metadata bounded', async () => {
    const lines: string[] = [];
    const { rounds, problems, resumed, metaFiles } = await killLoopScript().killLoop({ kills: 8, clients: 12, base, say: (line) => lines.push(line) });
    process.stdout.write(`kill loop: ${lines.join('\n')}\nresumed ${resumed}; metadata files ${JSON.stringify(metaFiles)}\n`);
    expect(problems).toEqual([]);
    // Every round ran: 8 kills and a clean stop after the last restart.
    expect(rounds).toHaveLength(9);
    // The workload did run between the kills (the checks are about something).
    expect(rounds.reduce((sum, round) => sum + (round['ops'] ?? 0), 0)).toBeGreaterThan(0);
  }, 150_000);
});
