import type { RxferConfig } from '../../../src/config/config.schema';
import { TOKENS } from '../../../src/container/tokens';
import type { RemoteName } from '../../../src/protocol/remote-name';
import { LocalFsStorage } from '../../../src/storage/local-fs.storage';
import type { NameLocks } from '../../../src/storage/name-locks';
import type { CommittedFile, StagedWrite, VerifiedContent, WriteOptions } from '../../../src/storage/storage-adapter';
import { SecureServer, SecureServerOptions, TestUser, startSecureServer } from '../../security/support/server';

/**
 * The real local storage with gates: a test holds one storage call at a chosen point (the connection
 * reset meanwhile, a measurement started meanwhile), then lets it go on. Bound through the container
 * (TOKENS.Storage) in the quota tests of requests that outlive their connection.
 */

/** Where a storage call waits: `reached` once it gets there, held until `open()`. */
export class Gate {
  private arrive!: () => void;
  private let!: () => void;
  readonly reached = new Promise<void>((resolve) => (this.arrive = resolve));
  readonly opened = new Promise<void>((resolve) => (this.let = resolve));
  arrived(): void {
    this.arrive();
  }
  open(): void {
    this.let();
  }
}

/**
 * Where a call can be held. Each gate is one-shot, taken by the next call of its kind:
 * sizeOf: before the look (the quota's look at the file an upload replaces);
 * beginWrite: after the staging file is made (a kept upload claimed), before the answer;
 * commit / committed: taken by the next beginWrite, held before its commit runs / after it returned
 *   (the file published, the quota not yet told: a slow folder fsync after the rename);
 * remove: before the delete; removed: after the delete, before the answer (the ledger not yet told);
 * rename: before the rename.
 */
export type Point = 'sizeOf' | 'beginWrite' | 'commit' | 'committed' | 'remove' | 'removed' | 'rename';

/** The real local storage, with gates, counting every call in flight (staged writes' calls included). */
export class GatedStorage extends LocalFsStorage {
  private readonly gates = new Map<Point, Gate>();
  private busy = 0;
  /** Calls ever started: a quiet spell is one in which none starts. */
  started = 0;

  hold(point: Point): Gate {
    const gate = new Gate();
    this.gates.set(point, gate);
    return gate;
  }

  private take(point: Point): Gate | undefined {
    const gate = this.gates.get(point);
    this.gates.delete(point);
    return gate;
  }

  private static async pass(gate: Gate | undefined): Promise<void> {
    if (!gate) return;
    gate.arrived();
    await gate.opened;
  }

  /** No storage call (nor staged write's commit, abort or suspend) in flight. */
  get idle(): boolean {
    return this.busy === 0;
  }

  private async counted<T>(work: () => Promise<T>): Promise<T> {
    this.busy++;
    this.started++;
    try {
      return await work();
    } finally {
      this.busy--;
    }
  }

  /**
   * Holds the name's lock (as a commit, DELETE or RENAME of it that storage is slow to finish would):
   * a commit of the name that starts meanwhile has begun (its staging file settled) and waits inside.
   */
  holdName(name: string): Gate {
    const gate = new Gate();
    const internals = this as unknown as { locks: NameLocks; paths: { pathOf(name: RemoteName): string } };
    void this.counted(() => internals.locks.with([internals.paths.pathOf(name as RemoteName)], () => GatedStorage.pass(gate)));
    return gate;
  }

  override sizeOf(...args: Parameters<LocalFsStorage['sizeOf']>): Promise<number | undefined> {
    return this.counted(async () => {
      await GatedStorage.pass(this.take('sizeOf'));
      return super.sizeOf(...args);
    });
  }

  /** usage() calls begun: a measurement of the ledger walking storage. */
  usages = 0;

  override usage(prefix: string): Promise<number> {
    this.usages++;
    return super.usage(prefix);
  }

  override remove(...args: Parameters<LocalFsStorage['remove']>): Promise<number> {
    return this.counted(async () => {
      await GatedStorage.pass(this.take('remove'));
      const freed = await super.remove(...args);
      await GatedStorage.pass(this.take('removed'));
      return freed;
    });
  }

  override rename(...args: Parameters<LocalFsStorage['rename']>): Promise<void> {
    return this.counted(async () => {
      await GatedStorage.pass(this.take('rename'));
      return super.rename(...args);
    });
  }

  override beginWrite(name: RemoteName, options: WriteOptions): Promise<StagedWrite> {
    const before = this.take('commit');
    const after = this.take('committed');
    const answer = this.take('beginWrite');
    return this.counted(async () => {
      const staged = await super.beginWrite(name, options);
      await GatedStorage.pass(answer);
      const counted = <T>(work: () => Promise<T>) => this.counted(work);
      return {
        get sink() {
          return staged.sink;
        },
        resumed: staged.resumed,
        abort: () => counted(() => staged.abort()),
        suspend: () => counted(() => staged.suspend()),
        commit: (verified: VerifiedContent): Promise<CommittedFile> =>
          counted(async () => {
            await GatedStorage.pass(before);
            const file = await staged.commit(verified);
            await GatedStorage.pass(after);
            return file;
          }),
      };
    });
  }
}

/**
 * A real server whose storage is the one `make` builds on the configured root (a LocalFsStorage with
 * hooks), bound through the container as the design swaps storage, and its one user `user` (with the
 * quota the test gives it).
 */
export const startServerOver = async <T extends LocalFsStorage>(
  user: TestUser,
  make: (root: string) => T,
  options: SecureServerOptions = {},
): Promise<{ server: SecureServer; storage: T }> => {
  const server = await startSecureServer({
    ...options,
    auth: { users: [user.entry] },
    customize: (container) =>
      container
        .rebind(TOKENS.Storage)
        .toResolvedValue((config: RxferConfig) => make(config.storage.root), [TOKENS.Config])
        .inSingletonScope(),
  });
  return { server, storage: server.running.container.get(TOKENS.Storage) as T };
};

/** A real server over GatedStorage, its one user `user` (with the quota the test gives it). */
export const startGatedServer = (user: TestUser, options: SecureServerOptions = {}): Promise<{ server: SecureServer; storage: GatedStorage }> =>
  startServerOver(user, (root) => new GatedStorage(root), options);
