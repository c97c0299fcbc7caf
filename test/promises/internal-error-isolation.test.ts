import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Observable, map } from 'rxjs';
import type { QuotaLedger } from '../../src/auth/quota-ledger';
import { TOKENS } from '../../src/container/tokens';
import { FileOpsStage } from '../../src/pipeline/stages/file-ops.stage';
import type { SessionContext } from '../../src/session/session-context';
import type { SessionEvent } from '../../src/session/session-event';
import type { StorageAdapter } from '../../src/storage/storage-adapter';
import { RawClient, destroyAll, sha256 } from '../helpers/raw-client';
import { TestServer, captureLogs, startTestServer } from '../helpers/server';

/**
 * Promise (README, reliability): a bug in one session (INTERNAL) ends that session only: its client
 * hears ERR INTERNAL and is closed, the error is logged, and every other client's transfer goes on
 * and completes byte for byte. Provoked for real: the file-ops stage, rebound in the container,
 * throws a plain Error (no storage code) for `STAT boom`, as a stage with a bug would.
 */
class BuggyFileOpsStage extends FileOpsStage {
  override apply(event$: Observable<SessionEvent>, ctx: SessionContext): Observable<SessionEvent> {
    return super.apply(
      event$.pipe(
        map((event) => {
          if (event.type === 'named' && event.transfer.command.verb === 'STAT' && event.raw.toString() === 'boom') throw new TypeError('a stage bug: cannot read properties of undefined');
          return event;
        }),
      ),
      ctx,
    );
  }
}

const MiB = 1024 * 1024;

describe('INTERNAL ends one session, never the others', () => {
  let server: TestServer;
  let logs: ReturnType<typeof captureLogs>;
  const clients: RawClient[] = [];
  // An error that escapes the session would crash a real server with every client on it; here
  // Jest would swallow it, so it is caught and counted.
  const escaped: unknown[] = [];
  const noteEscape = (err: unknown) => void escaped.push(err);
  beforeAll(() => {
    process.on('uncaughtException', noteEscape);
    process.on('unhandledRejection', noteEscape);
  });
  afterAll(() => {
    process.off('uncaughtException', noteEscape);
    process.off('unhandledRejection', noteEscape);
  });
  beforeEach(async () => {
    escaped.length = 0;
    logs = captureLogs();
    server = await startTestServer({
      logger: logs.logger,
      customize: (container) =>
        container
          .rebind(FileOpsStage)
          .toResolvedValue((storage: StorageAdapter, quotas: QuotaLedger) => new BuggyFileOpsStage(storage, quotas), [TOKENS.Storage, TOKENS.QuotaLedger])
          .inSingletonScope(),
    });
    await writeFile(join(server.root, 'keep.bin'), 'the previous version');
  });
  afterEach(async () => {
    destroyAll(clients);
    await server.close();
  });

  const connect = async () => {
    const client = await RawClient.connect(server.port);
    clients.push(client);
    return client;
  };

  test('an INTERNAL mid-way through another client’s upload and download: both complete byte for byte', async () => {
    const uploader = await connect();
    const downloader = await connect();
    const victim = await connect();

    // Another client's upload, half sent; another's download, started.
    const data = randomBytes(4 * MiB);
    await writeFile(join(server.root, 'big-out.bin'), randomBytes(3 * MiB));
    const outgoing = await readFile(join(server.root, 'big-out.bin'));
    await uploader.send(Buffer.concat([Buffer.from(`UPLOAD ${data.length}\nbig-in.bin\n`), data.subarray(0, 2 * MiB)]));
    await downloader.send('DOWNLOAD\nbig-out.bin\n');
    expect(await downloader.readLine()).toBe(`OK ${outgoing.length} ${sha256(outgoing)}`);
    const firstPart = await downloader.readBytes(MiB);

    // The bug, in a third session.
    await victim.send('STAT\nboom\n');
    expect(await victim.readLine()).toBe('ERR INTERNAL a stage bug: cannot read properties of undefined');
    await victim.waitClosed();
    const failure = logs.lines.find((line) => line.msg === 'Session failed: a stage bug: cannot read properties of undefined');
    expect(failure?.level).toBe(50);

    // The others finish, unharmed.
    await uploader.send(Buffer.concat([data.subarray(2 * MiB), Buffer.from(`SHA256 ${sha256(data)}\n`)]));
    expect(await uploader.readUploadOutcome(20_000)).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
    expect((await readFile(join(server.root, 'big-in.bin'))).equals(data)).toBe(true);
    const rest = await downloader.readBytes(outgoing.length - MiB, 20_000);
    expect(Buffer.concat([firstPart, rest]).equals(outgoing)).toBe(true);

    // Their sessions and the server go on serving; the same request without the bug's name answers.
    await uploader.send('STAT\nkeep.bin\n');
    expect(await uploader.readLine()).toMatch(/^OK stat file 20 /);
    const newcomer = await connect();
    await newcomer.send('STAT\nbig-in.bin\n');
    expect(await newcomer.readLine()).toMatch(new RegExp(`^OK stat file ${data.length} `));
    expect(escaped).toEqual([]);
  }, 60_000);

  test('requests pipelined behind the failing one in the same session take no effect', async () => {
    const victim = await connect();
    // DELETE after the bug, in the same write: the session is over, the file must stay.
    await victim.send('STAT\nboom\nDELETE\nkeep.bin\n');
    expect(await victim.readLine()).toMatch(/^ERR INTERNAL /);
    await victim.waitClosed();
    expect(await readFile(join(server.root, 'keep.bin'), 'utf8')).toBe('the previous version');
    expect(escaped).toEqual([]);
  });
});
