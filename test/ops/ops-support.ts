import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { BIN, PROJECT, ensureBuilt } from '../helpers/cli';
import { RawClient } from '../helpers/raw-client';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** GET http://127.0.0.1:`port``path` (the operations listener). */
export const httpGet = (port: number, path: string): Promise<HttpAnswer> =>
  new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 10_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });

/** The value of one sample in Prometheus text (`name{a="x",b="y"}` with labels in any order), or undefined. */
export const sample = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.keys(labels).length !== Object.keys(found).length) continue;
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
};

export const scrape = async (port: number): Promise<string> => {
  const answer = await httpGet(port, '/metrics');
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
  return answer.body;
};

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes (a failure guard, not a timing assertion). */
export const eventually = async <T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

/**
 * An upload sent by hand over a raw socket, so a test can stop half way (to scrape, signal, reload)
 * and go on. The data is a repeated 1 MiB block; the digest is computed as it is sent.
 */
export class ManualUpload {
  private readonly hash = createHash('sha256');
  private sent = 0;
  private readonly block = Buffer.alloc(1024 * 1024, 7);

  constructor(
    readonly client: RawClient,
    readonly name: string,
    readonly size: number,
  ) {}

  async begin(): Promise<void> {
    await this.client.send(`UPLOAD ${this.size}\n${this.name}\n`);
    const accepted = await this.client.readLine(10_000);
    if (accepted !== 'OK file recv') throw new Error(`upload refused: ${accepted}`);
  }

  /** Sends up to `bytes` more data bytes, honouring the socket's backpressure. */
  async sendData(bytes: number): Promise<void> {
    const until = Math.min(this.size, this.sent + bytes);
    while (this.sent < until) {
      const chunk = this.block.subarray(0, Math.min(this.block.length, until - this.sent));
      this.hash.update(chunk);
      this.sent += chunk.length;
      if (!this.client.socket.write(chunk)) await new Promise((resolve) => this.client.socket.once('drain', resolve));
    }
  }

  /** Sends the rest and the trailer; returns the server's final reply line. */
  async finish(): Promise<string> {
    await this.sendData(this.size - this.sent);
    await this.client.send(`SHA256 ${this.hash.digest('hex')}\n`);
    return this.client.readLine(60_000);
  }
}

/** `rxfer serve` as a child process, with its stdout kept as lines (JSON ones parsed). */
export class ServeProcess {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static start(args: string[]): ServeProcess {
    ensureBuilt();
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['RXFER_HOST'];
    delete env['RXFER_PORT'];
    return new ServeProcess(spawn(process.execPath, [BIN, 'serve', ...args], { cwd: PROJECT, env }));
  }

  get records(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** The first log record that `match` accepts, once it is written. */
  waitFor(what: string, match: (record: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    return eventually(what, () => this.records.find(match), timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr.join('')}`);
    });
  }

  /** The ports it listens on, read from its start-up lines. */
  async ports(): Promise<{ port: number; metricsPort: number }> {
    const listening = await this.waitFor('the listening line', (r) => typeof r['port'] === 'number' && r['msg'] !== undefined && String(r['msg']).startsWith('Server listening'));
    const metrics = await this.waitFor('the metrics line', (r) => typeof r['metricsPort'] === 'number');
    return { port: listening['port'] as number, metricsPort: metrics['metricsPort'] as number };
  }

  /** Stops it if it still runs (the test's own cleanup). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
