import { Writable } from 'node:stream';
import { inject, injectable } from 'inversify';
import { Observable } from 'rxjs';
import type { QuotaLedger } from '../../auth/quota-ledger';
import type { TransferSlots } from '../../auth/transfer-slots';
import { scopedName } from '../../auth/user';
import type { RxferConfig } from '../../config/config.schema';
import { TOKENS } from '../../container/tokens';
import { RxferError } from '../../errors/rxfer-error';
import { hashOf } from '../../integrity/hash-algorithm';
import { flatMapSync } from '../../operators/flat-map-sync';
import type { Trailer } from '../../protocol/command';
import { RemoteName, parseRemoteName } from '../../protocol/remote-name';
import { SessionContext } from '../../session/session-context';
import { SessionEvent } from '../../session/session-event';
import { isStorageHang } from '../../session/storage-deadline';
import { Transfer } from '../../session/transfer';
import type { CommittedFile, StorageAdapter } from '../../storage/storage-adapter';
import { assertAsDeclared } from '../as-declared';
import { countedCommit } from '../counted-commit';
import { refusal } from '../refusal';
import { Stage } from '../stage';
import { uploadWriteOptions } from '../upload-write-options';

/** What one file of a BATCH brings: its own Transfer, its name line, its bytes and the digest declared for them. */
interface FileOfBatch {
  readonly transfer: Transfer;
  readonly raw: Buffer;
  readonly bytes: Buffer;
  readonly declared: Trailer;
}

/** Hands a whole file to a staged write that has no `writeWhole`: one write, its callback awaited. */
const writeAll = (sink: Writable, bytes: Buffer): Promise<void> =>
  new Promise((resolve, reject) => {
    if (sink.errored || sink.destroyed) return reject(sink.errored ?? new Error('the staging data was closed before it was written'));
    sink.write(bytes, (err) => (err ? reject(err) : resolve()));
  });

/**
 * A BATCH's files, each stored as an UPLOAD of its own is: the same name rules, permissions, size
 * limit, quota, digest check, atomic and fsynced commit, and a reply of its own, in request order.
 * What a batch saves is the rest: its files arrive whole (the decoder frames each as one event), so
 * none needs a staging stream, a write window, an `OK file recv` or a trailer, and the connection's
 * budget and ordering claims around them are taken once for the batch (PROTOCOL.md, BATCH).
 *
 * It comes after resolve-filename and file-ops, so that its files claim their names in request order
 * with every other request (SessionContext.earlierRequestsOn): each claim is taken synchronously as
 * the file passes, the storage work then runs in the background, and emit-ack awaits the outcomes
 * in order. A file of a batch waits for the earlier requests on its name, including earlier files
 * of its own batch; the files of one batch on unrelated names are committed side by side.
 */
@injectable()
export class StoreBatchStage implements Stage {
  readonly name = 'store-batch';

  constructor(
    @inject(TOKENS.Storage) private readonly storage: StorageAdapter,
    @inject(TOKENS.Config) private readonly config: RxferConfig,
    @inject(TOKENS.TransferSlots) private readonly slots: TransferSlots,
    @inject(TOKENS.QuotaLedger) private readonly quotas: QuotaLedger,
  ) {}

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return event$.pipe(flatMapSync((event): SessionEvent[] => (event.type === 'batchFile' ? [{ type: 'pending', transfer: event.transfer, outcome: this.store(event, ctx) }] : [event])));
  }

  /** Runs synchronously up to its claim on the name (the caller relies on it), then in the background. */
  private async store(file: FileOfBatch, ctx: SessionContext): Promise<SessionEvent[]> {
    const { transfer } = file;
    let name: RemoteName;
    try {
      transfer.name = parseRemoteName(file.raw);
      // One resolver for every command: the user's name, inside the user's root, checked again.
      name = parseRemoteName(scopedName(transfer.user!, transfer.name));
    } catch (err) {
      return refusal(transfer, err);
    }
    await ctx.earlierRequestsOn(name, transfer);
    // The connection ended while this file waited its turn: nothing is done for it.
    if (transfer.released) return [];
    const events = await this.storeNow(file, name, ctx);
    // Ended while storage was busy: what the file obtained meanwhile (a quota reservation) goes back.
    if (!transfer.released) return events;
    await transfer.release();
    return [];
  }

  private async storeNow({ transfer, bytes, declared }: FileOfBatch, name: RemoteName, ctx: SessionContext): Promise<SessionEvent[]> {
    const user = transfer.user!;
    try {
      transfer.onRelease(ctx.holdTransferSlot(user.name, () => this.slots.take(user)));
      const limit = this.config.limits.maxFileBytes;
      if (bytes.length > limit) throw new RxferError('TOO_LARGE', `${name} is ${bytes.length} bytes; this server accepts at most ${limit}`, { size: bytes.length, limit });
      transfer.received = bytes.length;
      ctx.observer.dataReceived(transfer, bytes.length);
      const digest = hashOf(transfer.algorithm, bytes);
      assertAsDeclared(transfer, declared, digest, 'the BATCH entry');
      // Without a quota there is nothing to reserve: no storage call, no deadline timer.
      if (user.quotaBytes !== undefined) {
        transfer.quota = await ctx.storageCall(
          'store',
          name,
          () => this.quotas.reserve(user, bytes.length, () => this.storage.sizeOf(name, { jail: user.root })),
          (late) => late.aborted(),
        );
        if (transfer.released) return [];
      }
      const file = await this.commit(transfer, name, bytes, digest, ctx);
      return [{ type: 'committed', transfer, file }];
    } catch (err) {
      // Refused before its commit began: nothing stored (a commit that began counts itself).
      if (!transfer.committing) transfer.quota?.aborted(0);
      return refusal(transfer, err);
    }
  }

  /**
   * The staging write and its commit as one storage call (one deadline): the file is whole in hand,
   * so nothing waits between them but storage itself.
   */
  private commit(transfer: Transfer, name: RemoteName, bytes: Buffer, digest: string, ctx: SessionContext): Promise<CommittedFile> {
    const options = uploadWriteOptions(transfer, this.quotas, { size: bytes.length, createOnly: false });
    // Set when the deadline passed: a staging write that opens after it is given back, never committed
    // (the client was told nothing was stored), as resolve-filename discards a late one.
    let gaveUp = false;
    const call = ctx.storageCall('store', name, async () => {
      const staged = await this.storage.beginWrite(name, options);
      // The connection ended, or the deadline passed, while the staging write was opened.
      if (transfer.released || gaveUp) {
        await staged.abort();
        throw new RxferError('STORAGE_FAILED', `${transfer.displayName}: given up before its commit; nothing stored`);
      }
      try {
        if (staged.writeWhole) staged.writeWhole(bytes);
        else await writeAll(staged.sink, bytes);
        // From here the quota is settled by the commit's outcome, whatever happens to the connection.
        transfer.committing = true;
        return await countedCommit(transfer.quota, () => staged.commit({ size: bytes.length, digest, hash: transfer.algorithm }));
      } catch (err) {
        // A failing abort is only logged: the file's own error is what its reply tells.
        await staged.abort().catch((abortErr: unknown) => ctx.log.warn({ err: abortErr }, `Could not discard the staging data of ${transfer.displayName}`));
        throw err;
      }
    });
    return call.catch((err: unknown) => {
      if (isStorageHang(err)) gaveUp = true;
      throw err;
    });
  }
}

