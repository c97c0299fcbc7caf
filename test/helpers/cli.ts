import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROJECT = join(__dirname, '..', '..');
export const BIN = join(PROJECT, 'bin', 'rxfer.js');
export const MAIN = join(PROJECT, 'dist', 'cli', 'main.js');
export { ensureBuilt } from './build';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * put -r's digest cache (src/client/digest-cache.ts) of the CLI runs in this test process: in a
 * temporary folder, never the developer's ~/.cache, and removed after each test file that uses this
 * helper (a Jest worker is stopped without its 'exit' handlers running, which left the folders behind;
 * the next file's CLI runs create it again).
 */
export const CLI_CACHE_DIR = join(tmpdir(), `rxfer-test-cache-${process.pid}`);
afterAll(() => rmSync(CLI_CACHE_DIR, { recursive: true, force: true }));

/** The developer's own settings that would change what a command does (the server, the token, TLS, the algorithm). */
const DEVELOPER_SETTINGS = ['RXFER_HOST', 'RXFER_PORT', 'RXFER_TOKEN', 'RXFER_HASH', 'RXFER_TLS', 'RXFER_CA'];

/** The environment the CLI runs with: the developer's own RXFER_* settings must not leak into the tests. */
export const cliEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, RXFER_CACHE_DIR: CLI_CACHE_DIR };
  for (const key of DEVELOPER_SETTINGS) delete env[key];
  return Object.assign(env, extra);
};

export const rxfer = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> =>
  new Promise((resolve) => {
    const env = cliEnv(options.env);
    execFile(process.execPath, [BIN, ...args], { cwd: options.cwd ?? PROJECT, env }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });


/** The CLI as a child process to watch, signal or kill mid-transfer (same clean environment). */
export const spawnRxfer = (args: string[]): ChildProcessWithoutNullStreams => {
  return spawn(process.execPath, [BIN, ...args], { cwd: PROJECT, env: cliEnv() });
};

/** `rxfer serve` as a child process on a free port, once it listens (the port is read from its log). */
export const spawnServe = async (root: string): Promise<{ child: ChildProcessWithoutNullStreams; port: string }> => {
  const child = spawnRxfer(['serve', '--port', '0', '--root', root]);
  let output = '';
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const listening = /"port":(\d+)/.exec(output);
      if (listening) resolve(listening[1]!);
    });
    child.once('exit', () => reject(new Error(`serve exited early: ${output}`)));
  });
  return { child, port };
};
