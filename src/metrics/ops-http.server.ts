import { IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { inject, injectable } from 'inversify';
import type { Logger } from 'pino';
import { TOKENS } from '../container/tokens';
import { listenError } from '../server/listen-error';
import type { RxferServer } from '../server/rxfer-server';
import { RxferMetrics } from './rxfer-metrics';
import type { StorageProbe } from './storage-probe';

/** A storage that takes longer than this to answer the probe counts as down. */
const PROBE_TIMEOUT_MS = 5000;
/** Connections the operations listener holds at once; more are closed as they arrive. */
export const OPS_MAX_CONNECTIONS = 64;

const withTimeout = (probe: Promise<void>, ms: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`storage did not answer within ${ms} ms`)), ms);
    probe.then(resolve, reject).finally(() => clearTimeout(timer));
  });

/**
 * The operations listener: GET /metrics (Prometheus text), /healthz (liveness: listening, and the
 * storage answers a cheap probe), /readyz (readiness: accepting connections; 503 from the first
 * SIGTERM on, so a load balancer stops sending new clients while transfers drain). Plain HTTP and
 * no token: bind it to a private address. It stays up until the process exits, so the balancer and
 * Prometheus can watch the drain.
 */
@injectable()
export class OpsHttpServer {
  private http: Server | undefined;

  constructor(
    @inject(TOKENS.Metrics) private readonly metrics: RxferMetrics,
    @inject(TOKENS.Server) private readonly server: RxferServer,
    @inject(TOKENS.StorageProbe) private readonly probe: StorageProbe,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {}

  async listen(host: string, port: number): Promise<AddressInfo> {
    this.metrics.collectProcessMetrics();
    // Checked each second (Node's default is 30 s), so a connection that never sends its request is dropped soon after headersTimeout.
    const http = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => void this.handle(req, res));
    // Scrapes and probes are short; a client that holds a connection open must not hold the exit.
    http.keepAliveTimeout = 5000;
    http.headersTimeout = 5000;
    http.requestTimeout = 10_000;
    // It shares the process's file descriptors with the rxfer listener: without a cap, idle
    // connections here (a slowloris, a runaway prober) could use them all up and make the rxfer
    // listener refuse clients. A scraper and a few probers need a handful.
    http.maxConnections = OPS_MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      http.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port, 'metrics.port')));
      http.listen({ host, port }, () => resolve());
    });
    http.on('error', (err) => this.log.error({ err }, `Metrics listener failed: ${err.message}`));
    this.http = http;
    const address = http.address() as AddressInfo;
    this.log.info({ metricsHost: address.address, metricsPort: address.port }, `Metrics and health on http://${address.address}:${address.port}/metrics (/healthz, /readyz)`);
    return address;
  }

  async close(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    if (!http) return;
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed: use GET\n', { Allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split('?')[0];
    try {
      switch (path) {
        case '/metrics':
          return send(res, 200, await this.metrics.registry.metrics(), { 'Content-Type': this.metrics.registry.contentType });
        case '/healthz': {
          const reason = await this.unhealthy();
          return reason ? send(res, 503, `unhealthy: ${reason}\n`) : send(res, 200, 'ok\n');
        }
        case '/readyz':
          return this.server.accepting ? send(res, 200, 'ready\n') : send(res, 503, `not ready: ${this.server.state}\n`);
        default:
          return send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
      }
    } catch (err) {
      this.log.warn({ err }, `Metrics request ${path} failed`);
      return send(res, 500, `error: ${(err as Error).message.split('\n')[0]}\n`);
    }
  }

  /** Undefined when healthy, else a one-line reason. */
  private async unhealthy(): Promise<string | undefined> {
    if (!this.server.listening) return `server ${this.server.state}, not listening`;
    try {
      await withTimeout(this.probe(), PROBE_TIMEOUT_MS);
      return undefined;
    } catch (err) {
      return (err as Error).message.split('\n')[0];
    }
  }
}

const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
};
