import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds: from a small file on loopback (ms) to a large one over a slow link (hours). */
const TRANSFER_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Seconds: a local fs call takes well under 1 ms, an S3 request tens of ms, a stuck one seconds. */
const STORAGE_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The rxfer_* metrics, in a registry of their own (not prom-client's global one): a process that
 * embeds several servers, as the tests do, gets one set per server. Label values come only from
 * fixed sets (verbs, outcomes, error codes, storage operations), never from names or users, so the
 * series count stays bounded whatever clients send.
 */
export class RxferMetrics {
  readonly registry = new Registry();
  /**
   * Per-chunk tallies of file data: a plain addition per 64 KiB chunk on the hot path (≈ 640 ns a
   * chunk through prom-client's inc, measured), folded into the metrics below at each scrape, so a
   * scrape still sees every byte that has moved.
   */
  readonly flow = { received: 0, sent: 0, staging: 0 };
  private folded = { received: 0, sent: 0 };
  readonly connectionsOpen = new Gauge({ name: 'rxfer_connections_open', help: 'Client connections open now', registers: [this.registry] });
  readonly connectionsTotal = new Counter({ name: 'rxfer_connections_total', help: 'Client connections accepted', registers: [this.registry] });
  readonly bytesReceived: Counter = new Counter({
    name: 'rxfer_bytes_received_total',
    help: 'File data bytes received (uploads), counted as they arrive',
    registers: [this.registry],
    collect: () => this.bytesReceived.inc(this.fold('received')),
  });
  readonly bytesSent: Counter = new Counter({
    name: 'rxfer_bytes_sent_total',
    help: 'File data bytes sent (downloads), counted as they leave',
    registers: [this.registry],
    collect: () => this.bytesSent.inc(this.fold('sent')),
  });
  readonly requests = new Counter({
    name: 'rxfer_requests_total',
    help: 'Requests finished, by command and outcome (ok, not_found, error, interrupted)',
    labelNames: ['command', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({ name: 'rxfer_errors_total', help: 'ERR replies and sessions ended by an error, by code', labelNames: ['code'] as const, registers: [this.registry] });
  readonly transferDuration = new Histogram({
    name: 'rxfer_transfer_duration_seconds',
    help: 'Time from a request line to its last reply (a download: its last byte handed to the socket)',
    labelNames: ['command'] as const,
    buckets: TRANSFER_BUCKETS,
    registers: [this.registry],
  });
  readonly stagingBytes: Gauge = new Gauge({
    name: 'rxfer_staging_bytes',
    help: 'Bytes of uploads in progress, received and not yet committed',
    registers: [this.registry],
    collect: () => this.stagingBytes.set(this.flow.staging),
  });
  readonly authFailures = new Counter({ name: 'rxfer_auth_failures_total', help: 'AUTH requests refused (unknown user or wrong token)', registers: [this.registry] });
  readonly storageOperation = new Histogram({
    name: 'rxfer_storage_operation_seconds',
    help: 'Storage adapter calls (local disk or S3), by operation',
    labelNames: ['op'] as const,
    buckets: STORAGE_BUCKETS,
    registers: [this.registry],
  });
  private processMetrics = false;

  /** What moved since the last scrape. */
  private fold(key: 'received' | 'sent'): number {
    const delta = this.flow[key] - this.folded[key];
    this.folded[key] = this.flow[key];
    return delta;
  }

  /** Adds prom-client's process metrics (CPU, memory, handles, event-loop lag): only when someone scrapes. */
  collectProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry });
  }
}
