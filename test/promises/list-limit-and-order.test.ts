import { RawClient, destroyAll, parseListHeader, readListAnswer, sha256, uploadRequest } from '../helpers/raw-client';
import { TestServer, startTestServer } from '../helpers/server';

/**
 * Promises (PROTOCOL.md, LIST): more than `limits.maxListEntries` files is ERR TOO_LARGE (over a
 * real socket, with the server's own config, not only the adapter's `limit`), and a LIST shows the
 * folder as the requests sent before it left it: uploads pipelined before it are in it, those
 * pipelined after it are not and do not push it over the limit.
 */
const LIMIT = 3;

/** `LIST <folder>` answer: the header, then the names of its lines. */
const list = async (client: RawClient, folder: string): Promise<{ head: string; names: string[] }> => {
  await client.send(`LIST\n${folder}\n`);
  return readList(client);
};
const readList = async (client: RawClient): Promise<{ head: string; names: string[] }> => {
  const head = await client.readLine();
  if (!parseListHeader(head)) return { head, names: [] };
  const { files } = await readListAnswer(client, { header: head });
  return { head, names: files.map((file) => file.name).sort() };
};

describe('LIST: its limit, and its place among the requests', () => {
  let server: TestServer;
  let client: RawClient;
  beforeEach(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: LIMIT } } });
    client = await RawClient.connect(server.port);
  });
  afterEach(async () => {
    destroyAll([client]);
    await server.close();
  });

  const upload = async (name: string) => {
    await client.send(uploadRequest(name, name));
    expect(await client.readUploadOutcome()).toBe(`OK file data recv ${Buffer.byteLength(name)} ${sha256(name)}`);
  };

  test(`exactly maxListEntries (${LIMIT}) files: listed; one more: ERR TOO_LARGE; a narrower folder still lists`, async () => {
    for (const name of ['a/1', 'a/2', 'b/3']) await upload(name);
    expect((await list(client, '')).names).toEqual(['a/1', 'a/2', 'b/3']);
    await upload('b/4');
    // (The message names the subfolder the walk was in when it counted one too many, "under b",
    // not the folder asked for: reported in test/MUTATION.md, not asserted here.)
    // The folder asked for, not the subfolder the walk had reached (it once named `b`).
    expect((await list(client, '')).head).toMatch(/^ERR TOO_LARGE more than 3 files under the root; /);
    expect((await list(client, 'b')).names).toEqual(['b/3', 'b/4']);
    // The session goes on.
    expect((await list(client, 'a')).names).toEqual(['a/1', 'a/2']);
  });

  test('pipelined: uploads sent before a LIST are in it, those sent after are not (and do not push it over the limit)', async () => {
    await upload('d/old');
    await client.send(
      Buffer.concat([
        uploadRequest('d/before-1', 'x'),
        uploadRequest('d/before-2', 'y'),
        Buffer.from('LIST\nd\n'),
        uploadRequest('d/after-1', 'z'),
        uploadRequest('d/after-2', 'w'),
      ]),
    );
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 1 /);
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 1 /);
    expect(await readList(client)).toEqual({ head: expect.stringMatching(/^OK list \d+ 3$/), names: ['d/before-1', 'd/before-2', 'd/old'] });
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 1 /);
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 1 /);
  });
});
