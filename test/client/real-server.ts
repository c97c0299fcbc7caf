import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load-config';
import { startServer } from '../../src/server/start-server';

export interface TestServer {
  readonly host: string;
  readonly port: number;
  /** The server's storage folder. */
  readonly root: string;
  /** A scratch folder for the test's local files (removed with the server). */
  readonly local: string;
  close(): Promise<void>;
}

/** The real server, on 127.0.0.1 with an OS-chosen port, storing in a fresh temp folder. */
export const startTestServer = async (server: Record<string, unknown> = {}): Promise<TestServer> => {
  const tmp = await mkdtemp(join(tmpdir(), 'rxfer-client-test-'));
  const root = join(tmp, 'root');
  const local = join(tmp, 'local');
  await mkdir(root);
  await mkdir(local);
  const config = parseConfig({
    server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0, ...server },
    storage: { kind: 'local', root },
    log: { level: 'silent' },
  });
  const running = await startServer(config);
  return {
    host: running.host,
    port: running.port,
    root,
    local,
    close: async () => {
      await running.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
};
