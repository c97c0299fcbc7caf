import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmallCommits } from '../../../src/storage/small-commits';

/**
 * Whether the commit worker keeps the process alive, seen from a real process of its own (inside
 * Jest something else always keeps it alive): while a commit is pending it must (or a server whose
 * last client just uploaded a small file, or a CLI, would exit with the file not committed), and
 * once idle it must not (or every process that ever committed a small file would linger until the
 * idle timer stops the worker).
 */
jest.setTimeout(60_000);

const CHILD = join(__dirname, 'support', 'commit-and-exit.ts');

/** The child's stdout lines and exit code; TypeScript through ts-node, transpiled only, as CommonJS. */
const runChild = (folder: string) =>
  new Promise<{ lines: string[]; code: number | null }>((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CHILD, folder], {
      env: { ...process.env, TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: 'commonjs', moduleResolution: 'node10' }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ lines: out.split('\n').filter(Boolean), code }));
  });

describe('SmallCommits and the life of its process', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-small-commits-life-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  test('commits pending keep the process alive (after an idle time, and between two batches in flight); then it exits with the worker idle, not stopped', async () => {
    // The same path in this process too: Stryker's per-test coverage sees only this process, and
    // runs a test against a mutant only where it saw the test reach it (the child gets the mutant too).
    const here = new SmallCommits();
    await here.commit({ data: new Uint8Array(1), staging: join(dir, '.rxfer-part-here'), target: join(dir, 'here'), folder: dir, createOnly: false, measureReplaced: false });
    await here.close();
    const { lines, code } = await runChild(dir);
    expect(code).toBe(0);
    // workerLeft false would mean the process waited for the idle timer to stop the worker.
    expect(lines).toEqual(['first', 'second', 'burst', 'last', JSON.stringify({ workerLeft: true })]);
    expect(await readFile(join(dir, 'last'), 'utf8')).toBe('last');
  });
});
