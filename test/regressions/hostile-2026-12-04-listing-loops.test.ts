import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RxferClient, uploadTree } from '../../src/client/index';
import { fakePagingServer, listReply } from '../helpers/fake-paging-server';


/** Pages a hostile server may give before the client must have refused it (it loops for ever otherwise). */
const PAGE_CAP = 40;

/**
 * A fake paging server whose every `LIST AFTER` answer is `page(n)` (n counts the pages served), always
 * with `more`. After PAGE_CAP pages it closes the connection, so a client that does not refuse the
 * loop ends with a lost connection instead of hanging the test.
 */
const loopingServer = async (page: (n: number) => readonly string[]) => {
  let served = 0;
  const server = await fakePagingServer(() => ({ verb }, socket) => {
    if (!verb.startsWith('LIST')) {
      socket.end('ERR BAD_COMMAND not in this test\n');
      return;
    }
    if (++served > PAGE_CAP) {
      socket.destroy();
      return;
    }
    socket.write(listReply(page(served), true));
  });
  return { served: () => served, ...server };
};

/**
 * listingPages promises (list.request.ts): "A server must move forward: a page that does not start
 * after the last name seen is a protocol violation, not a loop." It checks only that the next page
 * does not start with the very name asked after; a page that goes back further, or an empty page
 * with `more`, is taken. `ls -r` then prints for ever, and `put -r`'s ListingCursor asks for ever.
 */
describe('hostile 2026-12-04: a paging server that never moves forward', () => {
  const pagesOf = async (page: (n: number) => readonly string[]) => {
    const server = await loopingServer(page);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    let pages = 0;
    try {
      for await (const listed of client.listPages('dir')) {
        void listed;
        if (++pages > PAGE_CAP + 5) break;
      }
      return { error: undefined as unknown, served: server.served() };
    } catch (error) {
      return { error, served: server.served() };
    } finally {
      client.close();
      await server.close();
    }
  };

  test('the same two names on every page: refused as PROTOCOL_VIOLATION at the second page, not read until the server gives up', async () => {
    const { error, served } = await pagesOf(() => ['dir/a', 'dir/b']);
    expect(error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect(served).toBe(2);
  });

  // Passes now (the reply parser refuses it): kept so that a change there cannot reopen the TypeError.
  test('an empty page that says `more`: refused as PROTOCOL_VIOLATION (not a TypeError, not a loop)', async () => {
    const { error } = await pagesOf((n) => (n === 1 ? ['dir/a'] : []));
    expect(error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });

  test('put -r against it: the re-run check refuses the listing instead of asking for pages until the connection drops', async () => {
    const base = await mkdtemp(join(tmpdir(), 'rxfer-hostile-loop-'));
    const server = await loopingServer(() => ['dir/a', 'dir/b']);
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    try {
      await mkdir(join(base, 'tree'));
      await writeFile(join(base, 'tree', 'z'), 'a name after every listed one');
      const result = await uploadTree(client, join(base, 'tree'), 'dir').catch((err: unknown) => err);
      expect(result).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
      expect(server.served()).toBeLessThan(PAGE_CAP);
    } finally {
      client.close();
      await server.close();
      await rm(base, { recursive: true, force: true });
    }
  });
});
