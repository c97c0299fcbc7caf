import { Socket } from 'node:net';
import { Logger } from 'pino';
import type { User } from '../auth/user';
import { RxferConfig } from '../config/config.schema';
import { Command } from '../protocol/command';
import { FlowControl } from './flow-control';
import { Transfer } from './transfer';

let nextSessionId = 1;

/**
 * What one connection's stages share: its socket's flow control, its logger, its limits and the
 * requests it has open. Owned by the ConnectionActor and torn down in one place (`dispose`).
 */
export class SessionContext {
  readonly id = nextSessionId++;
  readonly flow: FlowControl;
  log: Logger;
  readonly remote: string;
  /** True while a download's data is on the wire: an error then must not write a reply line. */
  midBody = false;
  /** Who this session acts for: the anonymous user (if allowed) until an AUTH succeeds. */
  user: User | undefined;
  private readonly open = new Set<Transfer>();
  private nextTransferId = 1;
  private lastSettled: Promise<void> = Promise.resolve();

  constructor(
    readonly socket: Socket,
    readonly config: RxferConfig,
    logger: Logger,
  ) {
    this.flow = new FlowControl(socket);
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.log = logger.child({ session: this.id, remote: this.remote });
  }

  beginTransfer(command: Command): Transfer {
    const transfer = new Transfer(this.nextTransferId++, command, this.lastSettled);
    this.lastSettled = transfer.settled;
    this.open.add(transfer);
    return transfer;
  }

  /** The request has sent its last reply (or was refused): free it. */
  endTransfer(transfer: Transfer): void {
    this.open.delete(transfer);
    void transfer.release();
  }

  /** One info line per finished transfer, with its rate: what an operator greps for. */
  logDone(transfer: Transfer, verb: 'Stored' | 'Sent', size = transfer.size, sha256?: string): void {
    const ms = transfer.elapsedMs();
    const mibPerS = ms > 0 ? size / 1048576 / (ms / 1000) : 0;
    this.log.info(
      { file: transfer.displayName, bytes: size, ms: Math.round(ms), sha256 },
      `${verb} ${transfer.displayName} (${size} bytes) in ${ms.toFixed(0)} ms, ${mibPerS.toFixed(1)} MiB/s`,
    );
  }

  /**
   * Connection over: whatever is still open was interrupted. Staging files are deleted, so nothing
   * half-written survives under any name.
   */
  async dispose(): Promise<void> {
    const interrupted = [...this.open];
    this.open.clear();
    for (const transfer of interrupted) {
      if (transfer.staged) {
        this.log.warn(
          { file: transfer.displayName, received: transfer.received, declared: transfer.size },
          `Upload of ${transfer.displayName} interrupted after ${transfer.received} of ${transfer.size} bytes; nothing committed`,
        );
      }
    }
    await Promise.all(interrupted.map((transfer) => transfer.release().catch(() => undefined)));
  }
}
