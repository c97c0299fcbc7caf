import { inject, injectable } from 'inversify';
import { Observable } from 'rxjs';
import type { RxferConfig } from '../../config/config.schema';
import { TOKENS } from '../../container/tokens';
import { RxferError } from '../../errors/rxfer-error';
import { RemoteName, parseRemoteName } from '../../protocol/remote-name';
import { formatListingLine } from '../../protocol/listing';
import { isFileOp } from '../../protocol/command';
import { SessionContext } from '../../session/session-context';
import { SessionEvent } from '../../session/session-event';
import { Transfer } from '../../session/transfer';
import type { StagedWrite, StorageAdapter, WriteOptions } from '../../storage/storage-adapter';
import { isStorageHang } from '../../session/storage-deadline';
import type { TransferSlots } from '../../auth/transfer-slots';
import type { QuotaLedger } from '../../auth/quota-ledger';
import { scopedName } from '../../auth/user';
import { concatAsync } from '../concat-async';
import { refusal } from '../refusal';
import { Stage } from '../stage';
import { uploadWriteOptions } from '../upload-write-options';

/**
 * Filename: checks the name, maps it into the user's root, takes one of the user's transfer slots,
 * then asks storage to open the file (DOWNLOAD) or a staging file (UPLOAD/ADDFILE: size limit,
 * quota, create-only, free space). The request is accepted or refused here; a refused upload's data is still read off the wire and dropped, keeping the stream in step.
 * Requests on the same name take effect in the order they were sent (SessionContext.earlierRequestsOn).
 */
/**
 * Most files in one page of a paged LIST (or maxListEntries if lower): a page is built in memory
 * (≈ 150 bytes a file), so this bounds what a LIST of a huge folder holds at once.
 */
export const LIST_PAGE_ENTRIES = 20_000;

@injectable()
export class ResolveFilenameStage implements Stage {
  readonly name = 'resolve-filename';

  constructor(
    @inject(TOKENS.Storage) private readonly storage: StorageAdapter,
    @inject(TOKENS.Config) private readonly config: RxferConfig,
    @inject(TOKENS.TransferSlots) private readonly slots: TransferSlots,
    @inject(TOKENS.QuotaLedger) private readonly quotas: QuotaLedger,
  ) {}

  apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return event$.pipe(
      concatAsync(ctx.flow, (event: SessionEvent) => {
        if (event.type !== 'named' || isFileOp(event.transfer.command)) return [event];
        // A download's open runs in the background: nothing after it in the stream depends on it,
        // so pipelined downloads overlap their file opens. An upload's staging file must be open
        // before its data arrives, so uploads are resolved in line.
        if (event.transfer.command.verb === 'DOWNLOAD' || event.transfer.command.verb === 'LIST') {
          const outcome = event.transfer.command.verb === 'LIST' ? this.list(event.transfer, event.raw, event.raw2, ctx) : this.resolve(event.transfer, event.raw, ctx);
          return [{ type: 'pending', transfer: event.transfer, outcome }];
        }
        return this.resolve(event.transfer, event.raw, ctx);
      }),
    );
  }

  /**
   * LIST: the files under a folder, in the user's own names. It claims the folder like any request
   * claims its name, so it waits for the earlier requests below it and the later ones wait for its
   * answer: it shows exactly what was sent before it (PROTOCOL.md: requests take effect in order).
   */
  private async list(transfer: Transfer, raw: Buffer, raw2: Buffer | undefined, ctx: SessionContext): Promise<SessionEvent[]> {
    const user = transfer.user!;
    try {
      const prefix = raw.length === 0 ? '' : parseRemoteName(raw);
      transfer.name = (prefix || '.') as RemoteName;
      const scope = scopedName(user, prefix).replace(/\/$/, '');
      await ctx.earlierRequestsOn(scope, transfer);
      if (transfer.released) return [];
      // LIST PAGED / LIST AFTER (where the storage can): pages of at most LIST_PAGE_ENTRIES, so that
      // no folder is too large to list and no answer is held whole in memory (issue 17).
      const { command } = transfer;
      if (command.verb !== 'LIST') return [];
      const paged = 'paged' in command && this.storage.listsInPages === true;
      const limit = paged ? Math.min(this.config.limits.maxListEntries, LIST_PAGE_ENTRIES) : this.config.limits.maxListEntries;
      // LIST FOLDERS / SHALLOW (issue 19, issue 17): a storage that cannot refuses rather than
      // answer with a different shape than asked (its greeting did not offer them).
      if ((command.folders || command.shallow) && this.storage.listsFolders !== true) throw new RxferError('BAD_COMMAND', 'this server cannot LIST FOLDERS or SHALLOW (its greeting has no list-options)');
      // A cursor that names a folder ends in "/" (a folder line's name, LIST FOLDERS).
      const afterFolder = raw2 !== undefined && raw2.length > 1 && raw2[raw2.length - 1] === 0x2f;
      const cursor = raw2 === undefined ? undefined : afterFolder ? raw2.subarray(0, raw2.length - 1) : raw2;
      const after = cursor === undefined ? undefined : parseRemoteName(scopedName(user, parseRemoteName(cursor)));
      const page = paged ? { ...(after !== undefined && { after }), ...(afterFolder && { afterFolder }) } : undefined;
      const shape = { ...(command.folders && { folders: true }), ...(command.shallow && { shallow: true }) };
      // The walk stops between entries once the connection is over (peer gone, server stopped).
      const listed = await ctx.storageCall('list', scope, () => this.storage.list(scope, { jail: user.root, limit, hash: transfer.algorithm, signal: ctx.signal, ...(page && { page }), ...shape }));
      const more = page !== undefined && listed.length > limit;
      const files = more ? listed.slice(0, limit) : listed;
      const strip = user.root === '' ? 0 : user.root.length + 1;
      const lines = files.map((file) => formatListingLine({ ...file, name: file.name.slice(strip) }));
      transfer.listing = { body: Buffer.from(lines.join('')), count: lines.length, ...(more && { more }) };
      return [{ type: 'accepted', transfer }];
    } catch (err) {
      return refusal(transfer, err);
    }
  }

  private async resolve(transfer: Transfer, raw: Buffer, ctx: SessionContext): Promise<SessionEvent[]> {
    const events = await this.resolveNow(transfer, raw, ctx);
    // The session ended while storage was busy: whatever this request obtained meanwhile (a quota
    // reservation, a staging file or a claim on a kept upload, an open file) is given back, however
    // the request ended. A refusal after the reservation (RESUME_MISMATCH, EXISTS, BUSY) kept it
    // for ever when only success gave back: the ledger then counted an upload nobody was making.
    if (!transfer.released) return events;
    await transfer.release();
    return [];
  }

  /**
   * The upload's staging file, opened as one change of the user's storage (QuotaLedger.change) that
   * lasts until the claim's fate is settled: the claim of a kept upload hides it from a measurement
   * until the reservation takes it over, or, when storage answers after the deadline (the request is
   * refused by then), until that late claim is given back. The kept bytes a fresh upload or a cut
   * resume drops are inside it too. Ending the change at the deadline let a measurement walk without
   * the kept bytes of a claim still under way, and the ledger then lost them.
   */
  private async openStaging(transfer: Transfer, name: RemoteName, ctx: SessionContext, options: WriteOptions): Promise<StagedWrite> {
    const quota = transfer.quota!;
    let opening!: Promise<StagedWrite>;
    let settled!: () => void;
    const over = new Promise<void>((resolve) => (settled = resolve));
    // The change begins once no measurement walks, and lasts until `over`.
    await new Promise<void>((begun) => {
      void quota.change(() => {
        opening = new Promise((resolve) => resolve(this.storage.beginWrite(name, options)));
        begun();
        return over;
      });
    });
    try {
      // Suspended, not aborted, when late: a resume's kept prefix stays kept (and counted), as if the
      // connection had been cut; aborting it deleted the bytes the ledger still counts as stored.
      const staged = await ctx.storageCall('store', name, () => opening, (late) => late.suspend().finally(settled));
      if (staged.resumed) quota.resumedFrom(staged.resumed.offset);
      settled();
      return staged;
    } catch (err) {
      // Cut by the deadline: over once the late answer is given back, or fails.
      if (isStorageHang(err)) void opening.then(undefined, () => settled());
      else settled();
      throw err;
    }
  }

  private async resolveNow(transfer: Transfer, raw: Buffer, ctx: SessionContext): Promise<SessionEvent[]> {
    try {
      transfer.name = parseRemoteName(raw);
      const user = transfer.user!;
      // One resolver for every command: the user's name, inside the user's root, checked again.
      const name = parseRemoteName(scopedName(user, transfer.name));
      // Earlier requests on this name are already downstream of this stage: waiting cannot deadlock.
      await ctx.earlierRequestsOn(name, transfer);
      // The connection ended while this request waited its turn: nothing more is done for it.
      if (transfer.released) return [];
      const { command } = transfer;
      // Given back when the request is freed: its last reply written (a download's data sent), or
      // the connection gone with the reply still waiting.
      transfer.onRelease(ctx.holdTransferSlot(user.name, () => this.slots.take(user)));
      if (command.verb === 'DOWNLOAD') {
        transfer.download = await ctx.storageCall(
          'read',
          name,
          () => this.storage.openRead(name, { jail: user.root, from: command.resume, hash: transfer.algorithm }),
          (late) => late.stream.destroy(),
        );
      } else {
        const limit = this.config.limits.maxFileBytes;
        if (transfer.size > limit) {
          throw new RxferError('TOO_LARGE', `${name} is ${transfer.size} bytes; this server accepts at most ${limit}`, { size: transfer.size, limit });
        }
        const resume = 'resume' in command ? command.resume : undefined;
        // A resumed upload's kept prefix already counts against the quota (it joins the reservation).
        const adding = transfer.size - (resume?.offset ?? 0);
        transfer.quota = await ctx.storageCall(
          'store',
          name,
          // ADDFILE never replaces a file (EXISTS at its commit if one is there): it is owed no room for one.
          () => this.quotas.reserve(user, adding, () => (command.verb === 'ADDFILE' ? Promise.resolve(undefined) : this.storage.sizeOf(name, { jail: user.root }))),
          (late) => late.aborted(),
        );
        // Gone meanwhile: no staging file for an upload that will never come (a fresh claim would
        // delete the name's kept upload, a resume would cut what it keeps beyond its offset).
        if (transfer.released) return [];
        transfer.staged = await this.openStaging(transfer, name, ctx, uploadWriteOptions(transfer, this.quotas, { size: transfer.size, createOnly: command.verb === 'ADDFILE', resume }));
        const { resumed } = transfer.staged;
        if (resumed) {
          // Hashing goes on from the kept prefix: the trailer is checked against the whole file.
          transfer.hash = resumed.hash;
          transfer.received = resumed.offset;
          ctx.log.info({ file: transfer.name, offset: resumed.offset }, `Resuming upload of ${transfer.name} at ${resumed.offset} of ${transfer.size} bytes`);
        }
      }
      return [{ type: 'accepted', transfer }];
    } catch (err) {
      return refusal(transfer, err);
    }
  }
}
