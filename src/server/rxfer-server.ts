import { AddressInfo, Socket } from 'node:net';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import type { Logger } from 'pino';
import { Subject, Subscription } from 'rxjs';
import type { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { formatReply } from '../protocol/reply';
import { RxferError } from '../errors/rxfer-error';
import { listenError } from './listen-error';
import type { ConnectionActor } from '../session/connection-actor';
import { NO_OBSERVER, type SessionObserver } from '../session/session-observer';
import type { StorageAdapter } from '../storage/storage-adapter';
import type { QuotaLedger } from '../auth/quota-ledger';
import type { Listener, Transport } from '../transport/transport';

const isLoopback = (host: string): boolean => host === '::1' || host.startsWith('127.') || host === 'localhost' || host.startsWith('::ffff:127.');

/** After the grace period, how long cut sessions get to flush their last line before they are destroyed. */
const FINAL_FLUSH_MS = 1000;

/** Where the server is in its life: /readyz is 200 only while `accepting`, /healthz needs `listening`. */
export type ServerState = 'starting' | 'accepting' | 'draining' | 'stopped';

/** Expired partial uploads are looked for at least this often (and at start). */
const MAX_SWEEP_INTERVAL_MS = 3_600_000;

/**
 * Accepts connections and gives each its own actor. Owns what spans connections: the connection
 * limit, the set of live sessions, and an orderly stop (stop accepting, let transfers in flight
 * finish within the grace period, then cut what remains).
 */
@injectable()
export class RxferServer {
  private listener: Listener | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sessions = new Map<Socket, Subscription>();
  private readonly perIp = new Map<string, number>();
  private readonly shutdown$ = new Subject<void>();
  private readonly abort$ = new Subject<void>();
  private readonly idle$ = new Subject<void>();
  private lifecycle: ServerState = 'starting';

  constructor(
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.ConnectionActor) private readonly actor: ConnectionActor,
    @inject(TOKENS.Storage) private readonly storage: StorageAdapter,
    @inject(TOKENS.Config) private readonly config: RxferConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.QuotaLedger) private readonly quotas: QuotaLedger,
    @inject(TOKENS.SessionObserver) @optional() private readonly observer: SessionObserver = NO_OBSERVER,
  ) {}

  get state(): ServerState {
    return this.lifecycle;
  }

  /** Taking new connections: false from the first SIGTERM (stop) on. */
  get accepting(): boolean {
    return this.lifecycle === 'accepting';
  }

  /** The listening socket is open. */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  async start(): Promise<AddressInfo> {
    await this.checkStorageRoot();
    await this.storage.init();
    await this.expirePartialUploads();
    const { partialExpiryMs } = this.config.storage;
    this.sweeper = setInterval(() => void this.expirePartialUploads(), Math.min(partialExpiryMs / 4, MAX_SWEEP_INTERVAL_MS));
    this.sweeper.unref();
    const { host, port } = this.config.server;
    this.listener = await this.transport.listen(host, port).catch((err: NodeJS.ErrnoException) => {
      clearInterval(this.sweeper);
      throw listenError(err, host, port, 'server.port');
    });
    this.lifecycle = 'accepting';
    this.listener.connection$.subscribe((socket) => this.accept(socket));
    const address = this.listener.address;
    this.warnIfExposed(address.address);
    this.log.info({ host: address.address, port: address.port, transport: this.transport.kind, storage: this.storage.kind }, `Server listening on ${address.address} port ${address.port}`);
    return address;
  }

  /**
   * A local root that exists but is not a folder is the operator's mistake, not an internal error:
   * said in words with the path (exit 2), before the adapter trips over it.
   */
  private async checkStorageRoot(): Promise<void> {
    const { kind, root } = this.config.storage;
    if (kind !== 'local') return;
    const info = await stat(root).catch(() => undefined);
    if (info && !info.isDirectory()) {
      throw new RxferError('CONFIG_INVALID', `storage.root: ${resolve(root)} is a file, not a folder; point --root (or storage.root) at a folder, or remove the file`);
    }
  }

  /** Plain TCP carries tokens and data in the clear: fine on loopback, worth a warning elsewhere. */
  private warnIfExposed(host: string): void {
    if (isLoopback(host)) return;
    const { auth } = this.config;
    if (this.transport.kind === 'tcp' && auth.users.length > 0) {
      this.log.warn(`Listening on ${host} in plain TCP with authentication on: tokens and data cross the network unencrypted; configure server.tls`);
    }
    if (auth.anonymous !== 'none') {
      this.log.warn(`Anonymous ${auth.anonymous} access is on while listening on ${host}: anyone who can reach this port can ${auth.anonymous} files`);
    }
  }

  /**
   * Interrupted uploads nobody resumed within `storage.partialExpiryMs` are deleted. Run at start and
   * then every partialExpiryMs / 4 (at most MAX_SWEEP_INTERVAL_MS); a program embedding the server, or a
   * test, may sweep now instead of waiting for the timer.
   */
  async expirePartialUploads(): Promise<void> {
    const freed = await this.storage.expirePartialUploads?.(this.config.storage.partialExpiryMs).catch((err: unknown) => {
      this.log.warn({ err }, 'Expiring partial uploads failed');
      return 0;
    });
    if (!freed) return;
    this.quotas.remeasure();
    this.log.info({ bytes: freed }, `Deleted expired partial uploads (${freed} bytes)`);
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    // An error before the actor subscribes (a reset during accept) must not crash the process.
    socket.on('error', () => undefined);
    const refusal = this.connectionRefusal(socket.remoteAddress ?? '');
    if (refusal) {
      this.log.warn({ remote: peer }, `Refused ${peer}: ${refusal}`);
      socket.end(formatReply({ kind: 'error', code: 'TOO_MANY_CONNECTIONS', message: `${refusal}; try again later` }));
      setTimeout(() => socket.destroy(), 2000).unref();
      return;
    }
    const ip = socket.remoteAddress ?? '';
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    socket.once('close', () => {
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left === 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
    });
    socket.setNoDelay(true);
    this.log.info({ remote: peer }, `Client connected: ${peer}`);
    this.observer.connectionOpened(peer);
    // Once per socket, however the session ends (even cut by stop()).
    socket.once('close', () => this.observer.connectionClosed(peer));
    const subscription = this.actor.run(socket, this.shutdown$, this.abort$).subscribe({
      complete: () => this.forget(socket, peer),
      error: () => this.forget(socket, peer),
    });
    if (!subscription.closed) this.sessions.set(socket, subscription);
  }

  private connectionRefusal(ip: string): string | undefined {
    const { maxConnections, maxConnectionsPerIp } = this.config.server;
    if (this.sessions.size >= maxConnections) return `the server is at its limit of ${maxConnections} connections`;
    const fromIp = this.perIp.get(ip) ?? 0;
    if (fromIp >= maxConnectionsPerIp) return `${ip} already has ${fromIp} connections (limit ${maxConnectionsPerIp})`;
    return undefined;
  }

  private forget(socket: Socket, peer: string): void {
    this.sessions.delete(socket);
    this.log.info({ remote: peer }, `Client disconnected: ${peer}`);
    if (this.sessions.size === 0) this.idle$.next();
  }

  private untilIdle(ms: number): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const subscription = this.idle$.subscribe(done);
      function done() {
        clearTimeout(timer);
        subscription.unsubscribe();
        resolve();
      }
    });
  }

  /** Stops accepting, asks every session to finish its current request, and cuts them after the grace period. */
  async stop(): Promise<void> {
    this.lifecycle = 'draining';
    clearInterval(this.sweeper);
    const closing = this.listener?.close();
    this.listener = undefined;
    this.shutdown$.next();
    await this.untilIdle(this.config.server.shutdownGraceMs);
    // Grace is over: sessions still busy are told why and closed; their staging files are deleted.
    this.abort$.next();
    await this.untilIdle(FINAL_FLUSH_MS);
    for (const [socket, subscription] of this.sessions) {
      subscription.unsubscribe();
      socket.destroy();
    }
    this.sessions.clear();
    // Nothing of a session may outlive "Server stopped": its staging files suspended or deleted,
    // its files closed, its queued work dropped (a LIST's walk stops at the next entry).
    // (A disk that hangs a write must not hang the stop: bounded like the final flush.)
    await Promise.race([this.actor.released(), new Promise((resolve) => setTimeout(resolve, FINAL_FLUSH_MS).unref())]);
    await closing;
    await this.storage.close?.();
    this.lifecycle = 'stopped';
    this.log.info('Server stopped');
  }
}
