import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT } from '../helpers/cli';

/**
 * "A second signal kills at once" (cli-failure.ts onInterrupt), when the first signal's clean-up ends
 * the command before the second is dispatched. Node hands a signal to the listeners there are when it
 * dispatches it: one that came while the process was busy, and is dispatched after the command took
 * its handling away, was dropped, and the process lived on. Hostile pass y's "SIGINT then SIGTERM at
 * once" once ended with exit 143 instead of killed (CI, 2026-12-07).
 *
 * A real process: the compiled onInterrupt, both signals sent to itself while its event loop is busy,
 * and a `first` that ends the command at once (its clean-up done, the handling taken away), as a
 * put -r whose connection closes in a few microtasks does.
 */

const CLI_FAILURE = join(PROJECT, 'dist', 'cli', 'cli-failure.js');

interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
}

const run = (script: string): Promise<Ended> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, CLI_FAILURE], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout });
    });
  });

/** The child: `first` prints the signal, then ends the command (stop) and sets its exit code. */
const SCRIPT = `
const { onInterrupt } = require(process.argv[1]);
const stop = onInterrupt((signal) => {
  process.stdout.write('first ' + signal + '\\n');
  stop();
  process.exitCode = 7;
});
process.kill(process.pid, 'SIGTERM');
process.kill(process.pid, 'SIGINT');
const until = Date.now() + 50;
while (Date.now() < until);
setTimeout(() => process.stdout.write('lived on\\n'), 300);
`;

describe('a second signal kills at once', () => {
  test('even when the first one\'s clean-up ended the command before the second was dispatched', async () => {
    const ended = await run(SCRIPT);
    const first = /^first (SIGINT|SIGTERM)\n$/.exec(ended.stdout);
    expect({ stdout: ended.stdout, first: first !== null }).toEqual({ stdout: expect.not.stringContaining('lived on'), first: true });
    // Killed by the other signal, the one that came second: no exit code of its own.
    expect(ended.code).toBeNull();
    expect(ended.signal).toBe(first![1] === 'SIGTERM' ? 'SIGINT' : 'SIGTERM');
  });

  test('no signal: the handling taken away, the process ends with its own exit code', async () => {
    const ended = await run(`
const { onInterrupt } = require(process.argv[1]);
const stop = onInterrupt(() => process.stdout.write('first\\n'));
stop();
process.stdout.write(String(process.listenerCount('SIGINT') + process.listenerCount('SIGTERM')) + '\\n');
process.exitCode = 3;
`);
    expect(ended).toEqual({ code: 3, signal: null, stdout: '0\n' });
  });
});
