import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, PROJECT, ensureBuilt } from '../helpers/cli';
import { type TestServer, startTestServer, userFiles } from '../helpers/server';
import { eventually } from '../ops/ops-support';

/**
 * Issue 19 attacked from outside: the CLI as a real process, stopped the way users stop it.
 * Each case failed before its fix.
 */
describe('issue 19, hostile: the CLI under interruption', () => {
  let server: TestServer;
  let tmp: string;

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer();
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rxfer-19-hostile-'));
  });
  afterEach(() => rm(tmp, { recursive: true, force: true }));

  /** `rxfer put - NAME` fed by a producer that never stops, with its own TMPDIR to watch the spool. */
  const putFromEndlessStdin = (extra: string[]) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
    delete env['RXFER_HOST'];
    delete env['RXFER_PORT'];
    const child = spawn(process.execPath, [BIN, 'put', '-H', `127.0.0.1:${server.port}`, ...extra, '-', 'endless.bin'], { cwd: PROJECT, env });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    const block = Buffer.alloc(256 * 1024, 1);
    child.stdin.on('error', () => undefined);
    const feed = setInterval(() => child.stdin.writable && child.stdin.write(block), 20);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const spoolBytes = (): number => {
      const folder = readdirSync(tmp).find((name) => name.startsWith('rxfer-stdin-'));
      const file = folder && join(tmp, folder, 'stdin');
      return file && existsSync(file) ? statSync(file).size : 0;
    };
    return { child, exited, spoolBytes, stderr: () => stderr, stop: () => clearInterval(feed) };
  };

  test.each([
    ['plain', [] as string[]],
    ['--json', ['--json']],
  ])('SIGINT while `put -` spools a stdin that never ends stops it at once, leaves no spool behind and uploads nothing (%s)', async (_label, extra) => {
    const put = putFromEndlessStdin(extra);
    try {
      await eventually('the stdin spool to grow', () => (put.spoolBytes() > 1024 * 1024 ? true : undefined));
      put.child.kill('SIGINT');
      // The producer keeps writing: before the fix the first ^C went unnoticed and the spool grew on.
      const code = await put.exited;
      expect(code).toBe(130);
      expect(readdirSync(tmp)).toEqual([]);
      expect(await userFiles(server.root)).not.toContain('endless.bin');
      if (extra.includes('--json')) {
        const lines = put.stderr().trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0]!)).toMatchObject({ code: 'INTERRUPTED', exit: 130, signal: 'SIGINT' });
      } else {
        expect(put.stderr()).toContain('interrupted (SIGINT)');
      }
    } finally {
      put.stop();
      put.child.kill('SIGKILL');
    }
  });
});
