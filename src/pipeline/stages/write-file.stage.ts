import { injectable } from 'inversify';
import { Observable } from 'rxjs';
import { inUserTerms } from '../../auth/user';
import { RxferError, toRxferError } from '../../errors/rxfer-error';
import type { Trailer } from '../../protocol/command';
import { SessionContext } from '../../session/session-context';
import { SessionEvent } from '../../session/session-event';
import { Transfer } from '../../session/transfer';
import { storageError } from '../../storage/storage-errors';
import type { CommittedFile } from '../../storage/storage-adapter';
import { countedCommit } from '../counted-commit';
import { assertAsDeclared } from '../as-declared';
import { isStorageHang } from '../../session/storage-deadline';
import { WriteWindow } from '../../io/write-window';
import { concatAsync } from '../concat-async';
import { Stage } from '../stage';

const MAX_COMMITS_IN_FLIGHT = 16;

/**
 * Write: streams chunks into the staging file (pausing the socket while too much waits to be written),
 * and at the trailer commits only if the digest of what arrived is the one the client declared.
 * Anything else aborts, deleting the staging data: no half file ever appears under a real name.
 */
@injectable()
export class WriteFileStage implements Stage {
  readonly name = 'write-file';

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return event$.pipe(
      concatAsync(ctx.flow, (event: SessionEvent) => {
        if (event.type === 'data') return this.write(event.transfer, event.bytes, ctx);
        if (event.type === 'dataEnd') return this.startCommit(event.transfer, event.trailer, ctx);
        return [event];
      }),
    );
  }

  private write(transfer: Transfer, bytes: Buffer, ctx: SessionContext): SessionEvent[] {
    const sink = transfer.staged?.sink;
    if (!sink || transfer.failure) return [];
    if (sink.errored || sink.destroyed) {
      // Disk full or I/O error: keep reading (the data is owed) but store nothing more.
      transfer.failure = storageError(sink.errored, 'store', transfer.displayName);
      return [];
    }
    const window = (transfer.writeWindow ??= new WriteWindow(sink));
    if (!window.write(bytes)) this.holdForRoom(transfer, window, ctx);
    return [];
  }

  /**
   * Holds the socket until the staging file takes more data, but not for ever: storage that takes
   * nothing for a whole stall window (a hung disk or mount) fails this upload, and the socket is let
   * go, so the owed data is read and dropped and the connection and its slot are not held hostage.
   * (The stall guard on the socket excuses windows in which we held it, so it cannot see this.)
   */
  private holdForRoom(transfer: Transfer, window: WriteWindow, ctx: SessionContext): void {
    const release = ctx.flow.hold();
    const { stallTimeoutMs } = ctx.config.limits;
    const hung = setTimeout(() => {
      transfer.failure ??= new RxferError('STORAGE_FAILED', `storage took none of ${transfer.displayName} for ${stallTimeoutMs} ms; nothing stored`, { stallTimeoutMs });
      transfer.storageHung = true;
      release();
    }, stallTimeoutMs);
    hung.unref();
    window.onRoom(() => {
      clearTimeout(hung);
      release();
    });
  }

  /**
   * Commits run in the background (fsyncs and renames of many small files overlap), at most
   * MAX_COMMITS_IN_FLIGHT per connection; emit-ack awaits their outcomes in request order.
   */
  private startCommit(transfer: Transfer, declared: Trailer, ctx: SessionContext): SessionEvent[] {
    // All its data went to the sink; it counts in the process's total until it is written, so the
    // uploads pipelined behind this one are held while it is still being written (see WriteWindow).
    transfer.writeWindow?.release();
    if (transfer.refusal) return [];
    ctx.commitsInFlight++;
    const release = ctx.commitsInFlight >= MAX_COMMITS_IN_FLIGHT ? ctx.flow.hold() : undefined;
    const outcome = this.finish(transfer, declared, ctx).finally(() => {
      ctx.commitsInFlight--;
      release?.();
    });
    return [{ type: 'pending', transfer, outcome }];
  }

  private async finish(transfer: Transfer, declared: Trailer, ctx: SessionContext): Promise<SessionEvent[]> {
    const staged = transfer.staged!;
    transfer.staged = undefined;
    // From here the quota is settled below, whatever happens to the connection meanwhile.
    transfer.committing = true;
    const digest = transfer.hash!.hex();
    let commit: Promise<CommittedFile> | undefined;
    try {
      if (transfer.failure) throw transfer.failure;
      if (transfer.received !== transfer.size) {
        throw new RxferError('INTERNAL', `received ${transfer.received} bytes of a declared ${transfer.size}`);
      }
      assertAsDeclared(transfer, declared, digest, 'the trailer');
      // An adapter that breaks its contract (a raw errno) still gives a storage code, never INTERNAL,
      // which would close the connection after later requests had already taken effect.
      commit = countedCommit(transfer.quota, () => staged.commit({ size: transfer.size, digest, hash: transfer.algorithm }));
      const file = await ctx.storageCall('store', transfer.displayName, () => commit!);
      return [{ type: 'committed', transfer, file }];
    } catch (err) {
      // A failing abort must not turn this outcome into a rejection: that would end the session with
      // an INTERNAL ahead of replies still owed. Storage that hung is not waited for (its close
      // waits for the write that never ends): the discard goes on in the background.
      // A commit that hung (cut by the storage deadline) is never waited for either.
      if (isStorageHang(err)) transfer.storageHung = true;
      const discarded = staged.abort().catch((abortErr: unknown) => ctx.log.warn({ err: abortErr }, `Could not discard the staging data of ${transfer.displayName}`));
      if (!transfer.storageHung) await discarded;
      // Refused before its commit began: nothing stored. A commit that began counts itself, even one
      // that answers after the deadline, whose file may still appear.
      if (!commit) transfer.quota?.aborted(0);
      // Storage names the file with the user's root in front; the user knows it without.
      return [{ type: 'refused', transfer, error: inUserTerms(toRxferError(err), transfer.user) }];
    }
  }
}
