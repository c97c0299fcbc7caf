import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuilt, rxfer } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * `rxfer get NAME DEVICE` writes to a target that cannot be renamed into place (a FIFO, a device).
 * The download ends once its last bytes are handed to that stream; a write that fails after that
 * was dropped: `get h.txt /dev/full` printed its summary and exited 0 although no byte landed.
 */
let server: TestServer;
beforeAll(async () => {
  ensureBuilt();
  server = await startTestServer();
}, 120_000);
afterAll(() => server.close());

test('a download whose last write to a device fails is LOCAL_IO, exit 1, in words', async () => {
  if (!existsSync('/dev/full')) {
    process.stdout.write('SKIPPED: this system has no /dev/full to fail writes\n');
    return;
  }
  await writeFile(join(server.root, 'h.txt'), 'hello\n');
  const got = await rxfer(['get', 'h.txt', '/dev/full'], { env: { RXFER_PORT: String(server.port) } });
  expect(got.code).toBe(1);
  expect(got.stderr).toContain('rxfer: ERR LOCAL_IO cannot write /dev/full: the disk is full');
  expect(got.stdout).toBe('');
});
