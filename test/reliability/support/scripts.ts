import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The issue-17 workload scripts (plain JS under scripts/, shared with `npm run soak` and
 * `node scripts/kill-loop.js`), typed for the tests that run their bounded forms.
 */
export interface ServerFigures {
  readonly rss: number;
  readonly fds: number;
  readonly timers: number;
  readonly heapUsed: number;
  readonly handles: Record<string, number>;
}

export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  readonly logPath: string;
  probe(options?: { gc?: boolean }): Promise<ServerFigures>;
  kill(): Promise<unknown>;
  stop(graceMs?: number): Promise<unknown>;
}

export interface WorkloadStats {
  readonly ops: number;
  readonly byOp: Record<string, number>;
  readonly expected: Record<string, number>;
  readonly unexpected: string[];
  readonly unexpectedCount: number;
  readonly digestMismatches: number;
  readonly corruptDownloads: number;
  readonly allLatencies: number[];
}

export interface RootState {
  readonly real: string[];
  readonly bad: string[];
  readonly strayStaging: string[];
  readonly metaFiles: number;
  readonly metaBytes: number;
  readonly stagingFiles: number;
  readonly partials: number;
}

export interface Workload {
  startServer(options: { root: string; workDir: string; port?: number; limits?: Record<string, unknown>; server?: Record<string, unknown> }): Promise<ServerProcess>;
  runWorkload(options: { port: number; clients: number; durationMs?: number; run?: { stopping: boolean } }): Promise<WorkloadStats>;
  inspectRoot(root: string): RootState;
  percentile(values: number[], p: number): number;
  sleep(ms: number): Promise<void>;
  /** This process's soft limit on open files. */
  openFileLimit(): number;
}

export interface KillLoop {
  killLoop(options: { kills: number; clients: number; base: string; say?: (line: string) => void; maxRunMs?: number }): Promise<{
    rounds: Record<string, number>[];
    problems: string[];
    resumed: number;
    metaFiles: { firstMax: number; lastMax: number; bound: number };
  }>;
}

export interface IdleBench {
  idleConnectionsBench(server: ServerProcess, options: { idle: number; measureSpeed?: boolean }): Promise<{ perConnectionKiB: number; heapPerConnectionKiB: number; heapEachKiB: number[]; rssBefore: number; rssWith: number; fdsBefore: number; fdsWith: number }>;
}

const SCRIPTS = join(__dirname, '..', '..', '..', 'scripts');

export const workload = (): Workload => require(join(SCRIPTS, 'workload.js')) as Workload;
export const killLoopScript = (): KillLoop => require(join(SCRIPTS, 'kill-loop.js')) as KillLoop;
export const idleBenchScript = (): IdleBench => require(join(SCRIPTS, 'idle-bench.js')) as IdleBench;

/** Server processes need /proc (descriptors, RSS) and the compiled dist/. */
export const canRunServerProcesses = (): boolean => existsSync('/proc/self/status');
