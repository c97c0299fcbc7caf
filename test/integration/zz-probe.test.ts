import { RawClient } from '../helpers/raw-client';
import { startTestServer, stagingFiles, captureLogs } from '../helpers/server';
import { TOKENS } from '../../src/container/tokens';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
test('probe', async () => {
  const logs = captureLogs('debug');
  const s = await startTestServer({ logger: logs.logger });
  const srv = s.running.container.get(TOKENS.Server) as any;
  const c = await RawClient.connect(s.port);
  await c.send(`UPLOAD 100\nhalf2\n0123456789`);
  c.socket.resetAndDestroy();
  await pause(300);
  console.log('mid-upload RST immediately', srv.connectionCount, await stagingFiles(s.root));
  for (const [sock] of srv.sessions) console.log({ destroyed: sock.destroyed, readableFlowing: sock.readableFlowing, isPaused: sock.isPaused(), writable: sock.writable, readableEnded: sock.readableEnded, errored: sock.errored?.code, listeners: sock.eventNames() });
  const d = await RawClient.connect(s.port);
  await d.send(`UPLOAD 100\nhalf3\n0123456789`);
  d.destroy();
  await pause(300);
  console.log('mid-upload FIN immediately', srv.connectionCount, await stagingFiles(s.root));
  for (const [sock] of srv.sessions) console.log({ destroyed: sock.destroyed, readableFlowing: sock.readableFlowing, isPaused: sock.isPaused(), writable: sock.writable, readableEnded: sock.readableEnded, errored: sock.errored?.code, listeners: sock.eventNames() });
  console.log(logs.lines.map((l) => `${l.level} ${l.msg} ${l.session ?? ''}`).join('\n'));
  await s.close();
});
