import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from 'inversify';
import pino, { Logger } from 'pino';
import type { RxferConfigInput } from '../../src/config/config.schema';
import { parseConfig } from '../../src/config/load-config';
import { TOKENS } from '../../src/container/tokens';
import { RunningServer, startServer } from '../../src/server/start-server';
import type { StorageAdapter } from '../../src/storage/storage-adapter';

type Section<K extends keyof RxferConfigInput> = NonNullable<RxferConfigInput[K]>;

/** Per-section overrides, merged over the test defaults (port 0, fresh root, no grace). */
export interface ServerOverrides {
  readonly server?: Partial<Section<'server'>>;
  readonly storage?: Partial<Section<'storage'>>;
  readonly limits?: Partial<Section<'limits'>>;
}

export interface TestServerOptions {
  readonly config?: ServerOverrides;
  readonly customize?: (container: Container) => void;
  /** Defaults to a silent logger; pass `captureLogs().logger` to read the lines back. */
  readonly logger?: Logger;
}

export interface TestServer {
  readonly host: string;
  readonly port: number;
  /** The storage root: a fresh folder under the OS temp dir. */
  readonly root: string;
  /** A scratch folder beside the root for the test's own files; removed with it. */
  readonly scratch: string;
  readonly running: RunningServer;
  /** Stops the server (idempotent) and removes the temp folders. */
  close(): Promise<void>;
  /** Stops the server (idempotent) but keeps the folders, so the test can look at what is left. */
  stop(): Promise<void>;
}

const silentLogger = (): Logger => pino({ level: 'silent' }, { write: () => undefined });

/** The real server on 127.0.0.1, an OS-chosen port and a fresh temp root. */
export const startTestServer = async (options: TestServerOptions = {}): Promise<TestServer> => {
  const tmp = await mkdtemp(join(tmpdir(), 'rxfer-server-test-'));
  const root = join(tmp, 'root');
  const scratch = join(tmp, 'scratch');
  await mkdir(root);
  await mkdir(scratch);
  const { server, storage, limits } = options.config ?? {};
  const config = parseConfig({
    // No grace by default, so afterEach never waits on a session a test left open.
    server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0, ...server },
    storage: { kind: 'local', root, ...storage },
    limits: { ...limits },
    log: { level: 'info' },
  });
  let running: RunningServer;
  try {
    running = await startServer(config, { logger: options.logger ?? silentLogger(), customize: options.customize });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= running.close());
  return {
    host: running.host,
    port: running.port,
    root,
    scratch,
    running,
    stop,
    close: async () => {
      await stop();
      // Retried: a commit its connection outlived (a client that closed with a BATCH in flight) may
      // still be making its folder when the server has stopped.
      await rm(tmp, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    },
  };
};

/** The storage adapter the server resolved (only helpers call container.get, per the house style). */
export const storageOf = (server: TestServer): StorageAdapter => server.running.container.get(TOKENS.Storage);

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A pino logger at `info` that keeps every line in memory, parsed. */
export const captureLogs = (level = 'info'): { logger: Logger; lines: LogLine[]; messages: () => string[] } => {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines, messages: () => lines.map((line) => line.msg) };
};

/** Every file path under `folder`, relative, `/`-separated, sorted (folders themselves are not listed). */
export const listFiles = async (folder: string): Promise<string[]> => {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1).split('\\').join('/'))
    .sort();
};

/** Data of an upload in progress: a staging file beside its target, or a partial upload's data file. */
const isStaging = (path: string): boolean =>
  path.split('/').some((segment) => segment.startsWith('.rxfer-part-')) || /^\.rxfer\/partials\/[0-9a-f]{64}$/.test(path);

/** Files under real names: everything except the server's `.rxfer/` metadata folder and staging files. */
export const userFiles = async (root: string): Promise<string[]> => (await listFiles(root)).filter((path) => !path.startsWith('.rxfer/') && !isStaging(path));

/** Upload staging files left anywhere under `root`. */
export const stagingFiles = async (root: string): Promise<string[]> => (await listFiles(root)).filter(isStaging);

/** Polls `check` until it returns true; a failure guard, not a timing assertion. */
export const eventually = async (check: () => Promise<boolean> | boolean, timeoutMs = 5000, what = 'condition'): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};
