import type { RxferConfig } from '../../src/config/config.schema';
import { TOKENS } from '../../src/container/tokens';
import { LocalFsStorage } from '../../src/storage/local-fs.storage';
import { RawClient } from '../helpers/raw-client';
import { startTestServer, stagingFiles, captureLogs } from '../helpers/server';

test('probe', async () => {
  let opened!: () => void;
  let proceed!: () => void;
  const inBeginWrite = new Promise<void>((resolve) => (opened = resolve));
  const gate = new Promise<void>((resolve) => (proceed = resolve));
  class SlowStaging extends LocalFsStorage {
    override async beginWrite(...args: Parameters<LocalFsStorage['beginWrite']>) {
      const staged = await super.beginWrite(...args);
      opened();
      await gate;
      return staged;
    }
  }
  const logs = captureLogs('debug');
  const slow = await startTestServer({ logger: logs.logger,
    customize: (container) => container.rebind(TOKENS.Storage).toResolvedValue((config: RxferConfig) => new SlowStaging(config.storage.root), [TOKENS.Config]),
  });
  const client = await RawClient.connect(slow.port);
  await client.send('UPLOAD 10\nslow.bin\n01234');
  await inBeginWrite;
  const t0 = Date.now();
  const stopping = slow.stop().then(() => console.log('stopped after', Date.now() - t0));
  await new Promise((r) => setTimeout(r, 3000));
  console.log('client got', JSON.stringify(client.unread.toString()), client.serverClosed);
  console.log(logs.lines.map((l) => `${l.level} ${l.msg}`).join('\n'));
  proceed();
  await stopping;
  await new Promise((r) => setTimeout(r, 300));
  console.log('staging', await stagingFiles(slow.root));
  client.destroy();
  await slow.close();
}, 60000);
