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

  test('the documented sentences: listening, client connected, client disconnected', async () => {
    expect(logs.messages()).toContain(`Server listening on 127.0.0.1 port ${server.port}`);

    const raw = await RawClient.connect(server.port);
    try {
      await logged(`Client connected: 127.0.0.1:${raw.socket.localPort}`);
      await raw.send('QUIT\n');
      expect(await raw.readLine()).toBe('OK bye');
      await logged(`Client disconnected: 127.0.0.1:${raw.socket.localPort}`);
    } finally {
      raw.destroy();
    }
  });

  test('at info, each finished request writes one line: its audit line', async () => {
    const raw = await RawClient.connect(server.port);
    const remote = `127.0.0.1:${raw.socket.localPort}`;
    try {
      await logged(`Client connected: ${remote}`);
      await raw.send(uploadRequest('log.txt', 'logged'));
      expect(await raw.readLines(2)).toEqual(['OK file recv', `OK file data recv 6 ${sha256('logged')}`]);
      await raw.send('DOWNLOAD\nlog.txt\n');
      expect(await raw.readLine()).toBe(`OK 6 ${sha256('logged')}`);
      expect((await raw.readBytes(6)).toString()).toBe('logged');
      await raw.send('QUIT\n');
      expect(await raw.readLine()).toBe('OK bye');
      await logged(`Client disconnected: ${remote}`);
    } finally {
      raw.destroy();
    }
    const session = logs.lines.filter((line) => line.msg !== `Server listening on 127.0.0.1 port ${server.port}`);
    expect(session.map((line) => line.msg)).toEqual([
      `Client connected: ${remote}`,
      expect.stringMatching(new RegExp(`^UPLOAD log\\.txt by \\S+ from ${remote}: ok, 6 bytes in \\d+ ms`)),
      expect.stringMatching(new RegExp(`^DOWNLOAD log\\.txt by \\S+ from ${remote}: ok, 6 bytes in \\d+ ms`)),
      `Client disconnected: ${remote}`,
    ]);
    expect(session[1]).toMatchObject({ level: 30, audit: true, command: 'UPLOAD', file: 'log.txt', bytes: 6, digest: sha256('logged'), outcome: 'ok' });
    expect(session[2]).toMatchObject({ level: 30, audit: true, command: 'DOWNLOAD', file: 'log.txt', bytes: 6, digest: sha256('logged'), outcome: 'ok' });
  });

  test('at debug, each command and each stored or sent file has its own line too', async () => {
    const debugLogs = captureLogs('debug');
    const debugServer = await startTestServer({ logger: debugLogs.logger });
    try {
      const client = await RxferClient.connect({ host: '127.0.0.1', port: debugServer.port });
      try {
        await client.uploadBuffer('notes.txt', Buffer.from('six b.'));
        expect((await client.downloadBuffer('notes.txt')).data.toString()).toBe('six b.');
        await client.quit();
      } finally {
        client.close();
      }
      const seen = (test: (msg: string) => boolean, what: string) => eventually(() => debugLogs.messages().some(test), 3000, what);
      await seen((msg) => msg.startsWith('Sent notes.txt (6 bytes)'), 'the Sent line');
      const stored = debugLogs.lines.find((line) => line.msg.startsWith('Stored notes.txt (6 bytes)'));
      expect(stored).toMatchObject({ level: 20, file: 'notes.txt', bytes: 6, hash: 'sha256', digest: sha256('six b.') });
      expect(debugLogs.lines.find((line) => line.msg === 'Client command: UPLOAD')).toMatchObject({ level: 20, command: 'UPLOAD', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      expect(debugLogs.messages()).toContain('Client command: DOWNLOAD');
    } finally {
      await debugServer.close();
    }
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
