import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, rxfer, type CliResult } from '../helpers/cli';
import { startTestServer, type TestServer } from '../helpers/server';
import { Wire, destroyAll } from '../security/support/wire';
import { type ListOptions, listRequest, readListAnswer, replySource } from '../helpers/raw-client';

/**
 * Issue 19: empty folders were invisible. LIST gave files only, so `rxfer mkdir x` did not show in
 * `rxfer ls` of its parent, and `rxfer rm -r` of a tree with a never-filled subfolder stopped with
 * NAME_CONFLICT. LIST FOLDERS (greeting `list-options=folders,shallow`) adds folder lines, which a
 * plain LIST never has, so older clients see what they saw before.
 */
describe('issue 19: empty folders show in ls and go with rm -r', () => {
  let server: TestServer;
  let run: (args: string[]) => Promise<CliResult>;
  const wires: Wire[] = [];

  beforeAll(async () => {
    ensureBuilt();
    server = await startTestServer();
    run = (args) => rxfer(args, { env: { RXFER_PORT: String(server.port) } });
  }, 120_000);
  afterAll(async () => {
    destroyAll(wires);
    await server?.close();
  });

  const names = (result: CliResult) => result.stdout.trim().split('\n').filter(Boolean).map((line) => line.trim().split(/\s+/).pop());

  test('a fresh mkdir shows in ls of its parent, with a trailing /, and in --json as a folder', async () => {
    expect((await run(['mkdir', 'p/fresh'])).code).toBe(0);
    expect((await run(['mkdir', 'p/also/deeper'])).code).toBe(0);
    const ls = await run(['ls', 'p']);
    expect(ls.stderr).toBe('');
    expect(names(ls)).toEqual(['p/also/', 'p/fresh/']);
    const json = JSON.parse((await run(['ls', 'p', '--json'])).stdout) as { name: string; type: string }[];
    expect(json).toEqual([{ name: 'p/also', type: 'folder' }, { name: 'p/fresh', type: 'folder' }]);
    expect(names(await run(['ls', '-r', 'p']))).toEqual(['p/also/', 'p/also/deeper/', 'p/fresh/']);
  }, 60_000);

  test('rm -r removes a tree whose subfolders were never filled', async () => {
    const local = join(server.scratch, 'one.txt');
    await import('node:fs/promises').then((fs) => fs.writeFile(local, 'one\n'));
    expect((await run(['put', local, 't/a/one.txt'])).code).toBe(0);
    for (const folder of ['t/empty', 't/a/empty', 't/b/c/d']) expect((await run(['mkdir', folder])).code).toBe(0);
    const rm = await run(['rm', '-r', 't']);
    expect(rm.stderr).toBe('');
    expect(rm.code).toBe(0);
    expect(existsSync(join(server.root, 't'))).toBe(false);
    expect((await run(['ls', 't'])).code).not.toBe(0);
  }, 60_000);

  test('on the wire: folder lines only when asked for, and a page may end on one', async () => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    expect(wire.greeting).toMatch(/ list-options=folders,shallow( |$)/);
    await wire.send('MKDIR\nw/empty\n');
    expect(await wire.line()).toBe('OK created');
    /** The answer's bytes as sent (readListAnswer has checked every line of them). */
    const listing = async (options: ListOptions = {}) => {
      await wire.send(listRequest('w', options));
      const { body, count, more } = await readListAnswer(replySource(wire), options);
      return { body: body.toString('utf8'), count, more };
    };
    expect(await listing()).toEqual({ body: '', count: 0, more: false });
    const folders = await listing({ folders: true });
    expect(folders.body).toMatch(/^- - \d+ w\/empty\/\n$/);
    expect((await listing({ paged: true, folders: true, shallow: true })).body).toBe(folders.body);
    // After the folder's line: nothing more (it is empty), whether or not the page goes inside.
    expect(await listing({ after: 'w/empty/', folders: true })).toEqual({ body: '', count: 0, more: false });
    await wire.send('LIST SHALLOW SHALLOW\nw\n');
    expect(await wire.line()).toMatch(/^ERR BAD_COMMAND /);
  }, 60_000);
});
