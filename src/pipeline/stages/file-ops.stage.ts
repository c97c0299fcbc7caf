import { inject, injectable } from 'inversify';
import { Observable, map } from 'rxjs';
import type { QuotaLedger } from '../../auth/quota-ledger';
import { type User, scopedName } from '../../auth/user';
import { TOKENS } from '../../container/tokens';
import { RxferError } from '../../errors/rxfer-error';
import { isFileOp } from '../../protocol/command';
import { RemoteName, parseRemoteName } from '../../protocol/remote-name';
import { Reply } from '../../protocol/reply';
import { SessionContext } from '../../session/session-context';
import { SessionEvent } from '../../session/session-event';
import { Transfer } from '../../session/transfer';
import type { HashChoice, Jail, StorageAdapter } from '../../storage/storage-adapter';
import { unsyncedChange } from '../../storage/storage-errors';
import { refusal } from '../refusal';
import { Stage } from '../stage';

/** How a failure of each operation reads: "cannot <action> <name>: EIO (i/o error)". */
const ACTIONS: Readonly<Record<string, string>> = { STAT: 'stat', DELETE: 'delete', RENAME: 'rename', MKDIR: 'create', RESUME: 'read the kept upload of' };

/**
 * File operations: STAT, DELETE, RENAME (never over an existing name) and MKDIR. Each runs in the
 * background like a download's open, ordered after earlier requests on the names it touches, and
 * its reply comes in request order (emit-ack). Names go through the same resolver as transfers.
 */
@injectable()
export class FileOpsStage implements Stage {
  readonly name = 'file-ops';

  constructor(
    @inject(TOKENS.Storage) private readonly storage: StorageAdapter,
    @inject(TOKENS.QuotaLedger) private readonly quotas: QuotaLedger,
  ) {}

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return event$.pipe(
      map((event): SessionEvent =>
        event.type === 'named' && isFileOp(event.transfer.command)
          ? { type: 'pending', transfer: event.transfer, outcome: this.run(event.transfer, event.raw, event.raw2, ctx) }
          : event,
      ),
    );
  }

  private async run(transfer: Transfer, raw: Buffer, raw2: Buffer | undefined, ctx: SessionContext): Promise<SessionEvent[]> {
    const user = transfer.user!;
    // Where the request may reach, and the algorithm its digests are in (STAT, RESUME).
    const scope = { jail: user.root, hash: transfer.algorithm };
    try {
      transfer.name = parseRemoteName(raw);
      const name = parseRemoteName(scopedName(user, transfer.name));
      const to = raw2 === undefined ? undefined : parseRemoteName(scopedName(user, parseRemoteName(raw2)));
      // Both names are claimed in request order (synchronously, before any await).
      await Promise.all([ctx.earlierRequestsOn(name, transfer), to && ctx.earlierRequestsOn(to, transfer)]);
      // The connection ended while this request waited its turn: nothing more is done for it.
      if (transfer.released) return [];
      const { verb } = transfer.command;
      transfer.opReply = await ctx.storageCall(ACTIONS[verb] ?? verb.toLowerCase(), name, () => this.operate(verb, name, to, scope, user));
      return [{ type: 'accepted', transfer }];
    } catch (err) {
      return refusal(transfer, err);
    }
  }

  private async operate(verb: string, name: RemoteName, to: RemoteName | undefined, scope: Jail & HashChoice, user: User): Promise<Reply> {
    switch (verb) {
      case 'STAT': {
        const status = await this.storage.stat(name, scope);
        return { kind: 'stat', ...status };
      }
      case 'DELETE':
        // One change with its count: a measurement between the unlink and freed() subtracted it twice.
        await this.quotas.change(user, async () => {
          const removed = await this.storage.remove(name, scope).catch((err: unknown) => {
            // Deleted all the same, its folder not synced (NOT_DURABLE): freed before the error goes on.
            const bytes = unsyncedChange(err, 'removedBytes');
            if (bytes !== undefined) this.quotas.freed(user, bytes);
            throw err;
          });
          this.quotas.freed(user, removed);
        });
        return { kind: 'done', what: 'deleted' };
      case 'RESUME': {
        const partial = await this.storage.partialUpload?.(name, scope);
        if (!partial) throw new RxferError('NOT_FOUND', `no interrupted upload of ${name} is kept`);
        return { kind: 'partial', ...partial };
      }
      case 'RENAME':
        await this.storage.rename(name, to!, scope);
        return { kind: 'done', what: 'renamed' };
      default:
        await this.storage.makeFolder(name, scope);
        return { kind: 'done', what: 'created' };
    }
  }
}
