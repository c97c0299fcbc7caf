import { RxferClient } from '../../../src/client/rxfer-client';
import { type ListingPage, listInPages, listingPages, shapeFileListing } from '../../../src/client/list.request';
import type { ListingEntry } from '../../../src/protocol/listing';
import { listAnswer, scriptedServer, type ScriptedServer } from './support/scripted-server';

/**
 * The client's LIST requests (src/client/list.request.ts): the exact request lines for each kind of
 * listing, what it refuses in an answer (a count that does not match, `more` with nothing to go on
 * from), and listingPages' guard: a paging server must move forward in one order of names, or the
 * listing ends as PROTOCOL_VIOLATION instead of a loop (ls -r printing for ever, get -r asking for ever).
 */

const entry = (name: string): ListingEntry => ({ name, size: 1, mtimeMs: 0 });
const folderEntry = (name: string): ListingEntry => ({ name, size: 0, mtimeMs: 0, folder: true });

describe('listingPages: every page, each asked after the one before, only forward', () => {
  /** Runs listingPages over `pages` (names; a trailing "/" is a folder), recording what was asked after. */
  const run = async (pages: readonly (readonly string[])[], moreOnLast = false) => {
    const asked: (string | undefined)[] = [];
    const got: string[][] = [];
    const ask = async (after: string | undefined): Promise<ListingPage> => {
      const i = asked.push(after) - 1;
      const names = pages[i] ?? [];
      return { entries: names.map((n) => (n.endsWith('/') ? folderEntry(n.slice(0, -1)) : entry(n))), more: i < pages.length - 1 || moreOnLast };
    };
    try {
      for await (const page of listingPages(ask)) got.push(page.entries.map((e) => e.name));
      return { asked, got, error: undefined };
    } catch (error) {
      return { asked, got, error: error as Error & { code?: string } };
    }
  };

  test('asks first with no cursor, then after the last name of each page, and stops at the page without more', async () => {
    const { asked, got, error } = await run([['a', 'b'], ['c'], ['d', 'e']]);
    expect(error).toBeUndefined();
    expect(asked).toEqual([undefined, 'b', 'c']);
    expect(got).toEqual([['a', 'b'], ['c'], ['d', 'e']]);
  });

  test('a folder`s cursor keeps its slash', async () => {
    const { asked, error } = await run([['a/'], ['a/x']]);
    expect(error).toBeUndefined();
    expect(asked).toEqual([undefined, 'a/']);
  });

  test('an empty last page is the end of the listing, not an error', async () => {
    const { got, error } = await run([['a'], []]);
    expect(error).toBeUndefined();
    expect(got).toEqual([['a'], []]);
  });

  test('a page that ends at the name it was asked after: PROTOCOL_VIOLATION, and no page after it', async () => {
    const { asked, got, error } = await run([['a', 'b'], ['a', 'b'], ['a', 'b']], true);
    expect(error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect(error?.message).toBe('LIST AFTER "b" answered with names that do not come after it');
    expect(asked).toHaveLength(2);
    expect(got).toEqual([['a', 'b']]);
  });

  test('a page that goes back: PROTOCOL_VIOLATION', async () => {
    expect((await run([['m'], ['a']])).error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });

  test('either order of names is taken: segment order, byte order', async () => {
    expect((await run([['a/x'], ['a-b'], ['b']])).error).toBeUndefined();
    expect((await run([['a-b'], ['a/x'], ['b']])).error).toBeUndefined();
  });

  test('but one order for the whole listing: forward in one and then only in the other is refused', async () => {
    // a/x → a-b is forward by segments only; a-b → a/y by bytes only.
    expect((await run([['a/x'], ['a-b'], ['a/y']])).error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect((await run([['a-b'], ['a/x'], ['a.txt']])).error).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });

  test('the cursor in the message is cut to 200 characters', async () => {
    const long = 'x'.repeat(300);
    const { error } = await run([[long], [long]]);
    expect(error?.message).toBe(`LIST AFTER ${JSON.stringify('x'.repeat(200))} answered with names that do not come after it`);
  });

  test('listInPages collects every entry of every page, in order', async () => {
    const pages = [['a', 'b'], ['c']];
    let i = 0;
    const all = await listInPages(async () => ({ entries: pages[i]!.map(entry), more: ++i < pages.length }));
    expect(all.map((e) => e.name)).toEqual(['a', 'b', 'c']);
  });
});

describe('shapeFileListing: an older server`s file listing, shaped as asked', () => {
  const files = ['dir/a', 'dir/sub/b', 'dir/sub/c', 'dir/sub/deep/d'].map(entry);
  const names = (listed: ListingEntry[]) => listed.map((e) => (e.folder ? `${e.name}/` : e.name));

  test('shallow: the folder`s own files, however many slashes end the folder`s name, at any depth', () => {
    expect(names(shapeFileListing('dir', files, { shallow: true }))).toEqual(['dir/a']);
    expect(names(shapeFileListing('dir//', files, { shallow: true }))).toEqual(['dir/a']);
    expect(names(shapeFileListing('dir/sub/', files.slice(1), { shallow: true }))).toEqual(['dir/sub/b', 'dir/sub/c']);
  });

  test('folders: every folder that holds files, once, before its files', () => {
    expect(names(shapeFileListing('dir', files, { folders: true }))).toEqual(['dir/a', 'dir/sub/', 'dir/sub/b', 'dir/sub/c', 'dir/sub/deep/', 'dir/sub/deep/d']);
  });

  test('folders and shallow: the folder`s own files and its own folders', () => {
    expect(names(shapeFileListing('dir', files, { folders: true, shallow: true }))).toEqual(['dir/a', 'dir/sub/']);
  });

  test('folders are named from the folder as asked, its trailing slashes dropped, at any depth', () => {
    expect(names(shapeFileListing('dir//', files, { folders: true, shallow: true }))).toEqual(['dir/a', 'dir/sub/']);
    expect(names(shapeFileListing('dir/sub/', files.slice(1), { folders: true }))).toEqual(['dir/sub/b', 'dir/sub/c', 'dir/sub/deep/', 'dir/sub/deep/d']);
  });

  test('of the whole store (folder ""), folders are named from the top', () => {
    expect(names(shapeFileListing('', [entry('x/y'), entry('z')], { folders: true }))).toEqual(['x/', 'x/y', 'z']);
    expect(shapeFileListing('', [entry('x/y')], { folders: true })[0]).toEqual({ name: 'x', size: 0, mtimeMs: 0, folder: true });
  });

  test('no shape: the files as they are', () => {
    expect(shapeFileListing('dir', files, {})).toEqual(files);
  });
});

describe('listPage: the request lines, and what an answer must hold', () => {
  let server: ScriptedServer | undefined;
  let client: RxferClient | undefined;
  afterEach(async () => {
    client?.close();
    await server?.close();
    server = client = undefined;
  });
  const connect = async (greetingExtra: string, answer: (request: string, n: number) => string | undefined | ((socket: import('node:net').Socket) => void)) => {
    server = await scriptedServer(greetingExtra, (request, socket, n) => {
      const reply = answer(request, n);
      if (typeof reply === 'string') socket.write(reply);
      else reply?.(socket);
    });
    client = await RxferClient.connect({ host: '127.0.0.1', port: server.port });
    return { server, client };
  };

  test('a server without paging: one LIST of the folder, trailing slashes dropped', async () => {
    const { server, client } = await connect('', () => listAnswer(['dir/a', 'dir/b']));
    expect((await client.list('dir//')).map((e) => e.name)).toEqual(['dir/a', 'dir/b']);
    expect(await client.list('')).toHaveLength(2);
    await client.list('dir/sub/');
    expect(server.requests).toEqual(['LIST\ndir\n', 'LIST\n\n', 'LIST\ndir/sub\n']);
  });

  test('a paging server: LIST PAGED, then LIST AFTER the last name, the folder`s name in NFC', async () => {
    const { server, client } = await connect(' list=paged', (_request, n) => (n === 1 ? listAnswer(['caf\u00e9/a'], true) : listAnswer(['caf\u00e9/b'])));
    const pages: string[][] = [];
    for await (const page of client.listPages('cafe\u0301/')) pages.push(page.entries.map((e) => e.name));
    expect(pages).toEqual([['caf\u00e9/a'], ['caf\u00e9/b']]);
    expect(server.requests).toEqual(['LIST PAGED\ncaf\u00e9\n', 'LIST AFTER\ncaf\u00e9\ncaf\u00e9/a\n']);
  });

  test('the cursor is sent in NFC too', async () => {
    const { server, client } = await connect(' list=paged', (_request, n) => (n === 1 ? listAnswer(['d/e\u0301'], true) : listAnswer([])));
    for await (const page of client.listPages('d')) void page;
    expect(server.requests[1]).toBe('LIST AFTER\nd\nd/\u00e9\n');
  });

  test('shapes the server offers go on the wire, a folder cursor with its slash', async () => {
    const sub = { name: 'd/sub', size: 0, mtimeMs: 0, folder: true as const };
    const { server, client } = await connect(' list=paged list-options=folders,shallow', (request) =>
      !request.startsWith('LIST PAGED') ? listAnswer(['d/z']) : request.includes('FOLDERS') ? listAnswer(['d/a', sub], true) : listAnswer(['d/a', 'd/b'], true),
    );
    const listed: ListingEntry[] = [];
    for await (const page of client.listPages('d', { folders: true })) listed.push(...page.entries);
    expect(listed).toEqual([entry('d/a'), sub, entry('d/z')]);
    for await (const page of client.listPages('d', { shallow: true })) void page;
    for await (const page of client.listPages('d', { folders: true, shallow: true })) void page;
    expect(server.requests).toEqual([
      'LIST PAGED FOLDERS\nd\n',
      'LIST AFTER FOLDERS\nd\nd/sub/\n',
      'LIST PAGED SHALLOW\nd\n',
      'LIST AFTER SHALLOW\nd\nd/b\n',
      'LIST PAGED FOLDERS SHALLOW\nd\n',
      'LIST AFTER FOLDERS SHALLOW\nd\nd/sub/\n',
    ]);
  });

  test('a folder line in a listing that did not ask for folders is refused', async () => {
    const { client } = await connect('', () => listAnswer([{ name: 'd/sub', size: 0, mtimeMs: 0, folder: true }]));
    await expect(client.list('d')).rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VIOLATION|NAME_INVALID/) });
  });

  test('an answer that is no listing: its error', async () => {
    const { client } = await connect('', () => 'ERR NOT_FOUND no such folder\n');
    await expect(client.list('d')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  test('an answer of another kind: PROTOCOL_VIOLATION naming the request, and the connection is given up', async () => {
    const { client } = await connect('', () => 'OK bye\n');
    await expect(client.list('d')).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION', message: 'unexpected bye reply to LIST' });
    expect(client.isClosed).toBe(true);
  });

  test('a count that does not match the lines: PROTOCOL_VIOLATION, saying both', async () => {
    const { client } = await connect('', () => listAnswer(['d/a', 'd/b'], false, 3));
    await expect(client.list('d')).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION', message: 'LIST announced 3 entries but sent 2' });
  });

  test('`more` where no page was asked for, or on an empty page: PROTOCOL_VIOLATION', async () => {
    const first = await connect('', () => listAnswer(['d/a'], true));
    await expect(first.client.list('d')).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION', message: 'LIST announced more entries without a page to continue from' });
    first.client.close();
    await first.server.close();
    const second = await connect(' list=paged', () => listAnswer([], true));
    await expect(second.client.list('d')).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION', message: 'LIST announced more entries without a page to continue from' });
  });

  test('a page without more after a paged request ends the listing', async () => {
    const { client, server } = await connect(' list=paged', () => listAnswer(['d/a']));
    expect((await client.list('d')).map((e) => e.name)).toEqual(['d/a']);
    expect(server.requests).toEqual(['LIST PAGED\nd\n']);
  });

  test('a listing cut off mid-body: CONNECTION_LOST, and the connection is given up', async () => {
    const { client } = await connect('', () => (socket) => {
      socket.write('OK list 100 2\n12 - 0 d/a\n');
      socket.destroy();
    });
    await expect(client.list('d')).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(client.isClosed).toBe(true);
  });
});
