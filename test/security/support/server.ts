import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Socket } from 'node:net';
import { join, relative } from 'node:path';
import pino, { type Logger } from 'pino';
import { hashToken, generateToken } from '../../../src/auth/token';
import type { Role } from '../../../src/auth/user';
import type { RxferConfig, RxferConfigInput } from '../../../src/config/config.schema';
import { parseConfig } from '../../../src/config/load-config';
import { TOKENS } from '../../../src/container/tokens';
import type { RxferServer } from '../../../src/server/rxfer-server';
import { RunningServer, StartOptions, startServer } from '../../../src/server/start-server';

type Section<K extends keyof RxferConfigInput> = Partial<NonNullable<RxferConfigInput[K]>>;

export interface SecureServerOptions {
  readonly server?: Section<'server'>;
  readonly limits?: Section<'limits'>;
  readonly auth?: Section<'auth'>;
  /** The local storage's partialExpiryMs: how old a kept upload must be for the sweep to delete it. */
  readonly partialExpiryMs?: number;
  /** Defaults to a silent logger. */
  readonly logger?: Logger;
  /** Rebinds what the test needs in the container before the server starts (a storage wrapper, say). */
  readonly customize?: StartOptions['customize'];
}

/**
 * A real server on 127.0.0.1 with a fresh layout that makes escapes visible:
 *
 *   <base>/                  watched: nothing may appear here
 *   <base>/sentinel/         a sibling of the storage with a secret file, watched
 *   <base>/storage/          the storage root
 */
export interface SecureServer {
  readonly port: number;
  readonly base: string;
  readonly root: string;
  readonly sentinel: string;
  readonly config: RxferConfig;
  readonly running: RunningServer;
  /** Live sessions, as the server counts them. */
  connections(): number;
  close(): Promise<void>;
}

export const SECRET = 'top secret: outside the storage root\n';

/** A fresh temp folder (realpath'd, so comparisons are not fooled by a linked /tmp). */
export const makeBase = async (prefix = 'rxfer-sec-'): Promise<string> => realpath(await mkdtemp(join(tmpdir(), prefix)));

export const startSecureServer = async (options: SecureServerOptions = {}, base?: string): Promise<SecureServer> => {
  base ??= await makeBase();
  const root = join(base, 'storage');
  const sentinel = join(base, 'sentinel');
  await mkdir(root, { recursive: true });
  await mkdir(sentinel, { recursive: true });
  await writeFile(join(sentinel, 'secret.txt'), SECRET);
  const config = parseConfig({
    server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0, ...options.server },
    storage: { kind: 'local', root, ...(options.partialExpiryMs !== undefined && { partialExpiryMs: options.partialExpiryMs }) },
    limits: { ...options.limits },
    auth: { ...options.auth },
    log: { level: 'silent' },
  });
  const running = await startServer(config, { logger: options.logger ?? pino({ level: 'silent' }), customize: options.customize });
  const server = running.container.get<RxferServer>(TOKENS.Server);
  let closing: Promise<void> | undefined;
  return {
    port: running.port,
    base,
    root,
    sentinel,
    config,
    running,
    connections: () => server.connectionCount,
    close: async () => {
      closing ??= running.close();
      await closing;
      await rm(base, { recursive: true, force: true });
    },
  };
};

export interface TestUser {
  readonly token: string;
  readonly entry: { name: string; role: Role; root: string; tokenHash: string; quotaBytes?: number };
}

/** A config user with a fresh token; only the hash goes into the entry. */
export const makeUser = async (name: string, role: Role, root: string, quotaBytes?: number): Promise<TestUser> => {
  const token = generateToken(name);
  return { token, entry: { name, role, root, tokenHash: await hashToken(token), ...(quotaBytes !== undefined && { quotaBytes }) } };
};

/** Server-side sockets of this process on `port` (the server and the tests share the process). */
export const serverSockets = (port: number): Socket[] =>
  (process as unknown as { _getActiveHandles(): unknown[] })
    ._getActiveHandles()
    .filter((handle): handle is Socket => handle instanceof Socket && handle.localPort === port && handle.remotePort !== port);


// ---- file-system observation --------------------------------------------------------------------

export interface Entry {
  readonly type: 'file' | 'dir' | 'link' | 'other';
  readonly size: number;
  readonly mtimeMs: number;
}

/** Every entry below `folder` (links not followed), keyed by relative path; `skip` paths are not entered. */
export const snapshot = async (folder: string, skip: string[] = []): Promise<Map<string, Entry>> => {
  const out = new Map<string, Entry>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      if (skip.includes(path)) continue;
      // The server writes and renames its own metadata in the background: an entry may vanish.
      const stats = await lstat(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!stats) continue;
      const type = stats.isSymbolicLink() ? 'link' : stats.isDirectory() ? 'dir' : stats.isFile() ? 'file' : 'other';
      out.set(relative(folder, path), { type, size: type === 'dir' ? 0 : stats.size, mtimeMs: type === 'dir' ? 0 : stats.mtimeMs });
      if (type === 'dir') await walk(path);
    }
  };
  await walk(folder);
  return out;
};

/** Human-readable differences between two snapshots (empty when equal). */
export const diffSnapshots = (before: Map<string, Entry>, after: Map<string, Entry>): string[] => {
  const changes: string[] = [];
  for (const [path, entry] of after) {
    const old = before.get(path);
    if (!old) changes.push(`+ ${JSON.stringify(path)} (${entry.type})`);
    else if (old.type !== entry.type || old.size !== entry.size || old.mtimeMs !== entry.mtimeMs) changes.push(`~ ${JSON.stringify(path)}`);
  }
  for (const path of before.keys()) if (!after.has(path)) changes.push(`- ${JSON.stringify(path)}`);
  return changes;
};

/** Regular files under `folder`, relative, excluding the server's own `.rxfer/` metadata. */
export const userFiles = async (folder: string): Promise<string[]> =>
  [...(await snapshot(folder))].filter(([path, entry]) => entry.type === 'file' && !path.split('/').includes('.rxfer')).map(([path]) => path).sort();

/** Staging files (`.rxfer-part-*`) anywhere below `folder`, and partial uploads' data files. */
export const stagingFiles = async (folder: string): Promise<string[]> =>
  [...(await snapshot(folder))]
    .map(([path]) => path)
    .filter((path) => path.split('/').some((segment) => segment.startsWith('.rxfer-part-')) || /^\.rxfer\/partials\/[0-9a-f]{64}$/.test(path));

export const readText = (path: string): Promise<string> => readFile(path, 'utf8');

// ---- TLS ------------------------------------------------------------------------------------------

export interface TestCert {
  readonly certPath: string;
  readonly keyPath: string;
  readonly pem: string;
}

/** A self-signed P-256 certificate for localhost / 127.0.0.1, made with openssl into `dir`. */
export const makeCert = async (dir: string): Promise<TestCert> => {
  await mkdir(dir, { recursive: true });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  return { certPath, keyPath, pem: await readFile(certPath, 'utf8') };
};
