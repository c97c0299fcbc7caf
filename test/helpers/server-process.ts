import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(__dirname, '..', '..', 'bin', 'rxfer.js');

/** `rxfer serve` as its own process (the built dist/), its output kept for failure messages. */
export interface ServerProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
  output(): string;
  exited(): Promise<number | null>;
}

/**
 * Starts `node bin/rxfer.js serve --config <configPath>` and resolves once it logs the port it
 * listens on (the config's log level must be info, port 0 for any free one). Fails, with what the
 * server printed, if it exits first or is not listening within `guardMs` (a failure guard, not a
 * timing assertion).
 */
export const startServerProcess = async (configPath: string, guardMs: number): Promise<ServerProcess> => {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${out.slice(0, 2000)}`)), guardMs);
    const look = () => {
      const match = /listening on \S+ port (\d+)/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      proc.stdout!.off('data', look);
      resolve(Number(match[1]));
    };
    proc.stdout!.on('data', look);
    void exit.then((code) => reject(new Error(`the server exited (${code}): ${out.slice(0, 2000)}`)));
  });
  return { proc, pid: proc.pid!, port, output: () => out, exited: () => exit };
};
