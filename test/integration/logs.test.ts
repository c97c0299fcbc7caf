import { RxferClient } from '../../src/client/index';
import { RawClient, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, captureLogs, eventually, startTestServer } from '../helpers/server';

describe('log lines', () => {
  let server: TestServer;
  let logs: ReturnType<typeof captureLogs>;

  beforeEach(async () => {
    logs = captureLogs();
    server = await startTestServer({ logger: logs.logger });
  });
  afterEach(async () => {
    await server.close();
  });

  const logged = (text: string) => eventually(() => logs.messages().includes(text), 3000, `the log line ${JSON.stringify(text)}`);

  test('the documented sentences: listening, client connected, client command', async () => {
    expect(logs.messages()).toContain(`Server listening on 127.0.0.1 port ${server.port}`);

    const raw = await RawClient.connect(server.port);
    try {
      await logged(`Client connected: 127.0.0.1:${raw.socket.localPort}`);
      await raw.send(uploadRequest('log.txt', 'logged'));
      expect(await raw.readLines(2)).toEqual(['OK file recv', `OK file data recv 6 ${sha256('logged')}`]);
      await logged('Client command: UPLOAD');
      await raw.send('DOWNLOAD\nlog.txt\n');
      expect(await raw.readLine()).toBe(`OK 6 ${sha256('logged')}`);
      expect((await raw.readBytes(6)).toString()).toBe('logged');
      await logged('Client command: DOWNLOAD');
      await raw.send('QUIT\n');
      expect(await raw.readLine()).toBe('OK bye');
      await logged('Client command: QUIT');
      await logged(`Client disconnected: 127.0.0.1:${raw.socket.localPort}`);
    } finally {
      raw.destroy();
    }
  });

  test('lines are JSON with a level, and a stored file is logged with its size', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      await client.uploadBuffer('notes.txt', Buffer.from('six b.'));
      await client.quit();
    } finally {
      client.close();
    }
    await eventually(() => logs.messages().some((msg) => msg.startsWith('Stored notes.txt (6 bytes)')), 3000, 'the Stored line');
    const stored = logs.lines.find((line) => line.msg.startsWith('Stored notes.txt'))!;
    expect(stored).toMatchObject({ level: 30, file: 'notes.txt', bytes: 6, hash: 'sha256', digest: sha256('six b.') });
    expect(logs.lines.find((line) => line.msg === 'Client command: UPLOAD')).toMatchObject({ command: 'UPLOAD', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });

  test('a protocol error is logged as a warning, and the log shows a hostile name escaped', async () => {
    const raw = await RawClient.connect(server.port);
    try {
      await raw.send(uploadRequest('\u001b[2Jbad', 'x'));
      expect(await raw.readLine()).toMatch(/^ERR NAME_INVALID /);
      await raw.send('BOGUS\n');
      expect(await raw.readLine()).toMatch(/^ERR BAD_COMMAND /);
    } finally {
      raw.destroy();
    }
    await eventually(() => logs.lines.some((line) => line.level === 40 && line.msg.includes('BAD_COMMAND')), 3000, 'the protocol error warning');
    for (const line of logs.messages()) expect(line).not.toContain('\u001b');
  });
});
