import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { splitHostPort } from '../../src/cli/connection-options';
import { explainFailure, formatFailure } from '../../src/cli/explain-failure';
import { planGetTarget } from '../../src/cli/get-target';
import { itemsOf } from '../../src/cli/list.command';
import { localOddities } from '../../src/cli/local-oddities';
import { remoteFolderOf } from '../../src/cli/remote-path';
import { RxferError } from '../../src/errors/rxfer-error';

/** Issue 19: the CLI's rules as pure functions (the CLI tests run them end to end). */
describe('-H as users write it', () => {
  test.each([
    ['files.lan', { host: 'files.lan' }],
    ['files.lan:9100', { host: 'files.lan', port: 9100 }],
    ['[::1]:9100', { host: '::1', port: 9100 }],
    ['[::1]', { host: '::1' }],
    ['::1', { host: '::1' }],
    ['fe80::1%eth0', { host: 'fe80::1%eth0' }],
  ])('%s', (value, expected) => expect(splitHostPort(value)).toEqual(expected));

  test.each(['files.lan:', 'files.lan:0', 'files.lan:x', '[::1]:99999', ':9000', '[]:1'])('%s is refused', (value) => {
    expect(() => splitHostPort(value)).toThrow(InvalidArgumentError);
  });
});

describe('remote names', () => {
  test.each([
    ['photos/', 'photos'],
    ['/photos//', 'photos'],
    ['.', ''],
    ['./', ''],
    ['/', ''],
    ['./a/b', 'a/b'],
  ])('%s names the folder %j', (arg, folder) => expect(remoteFolderOf(arg)).toBe(folder));
});

describe('ls items', () => {
  const file = (name: string) => ({ name, size: 1, mtimeMs: 0 });
  const entries = [file('p/a.txt'), file('p/sub/b.txt'), file('p/sub/deep/c.txt'), file('p/z/d.txt')];
  test('one level: files and the subfolders below, each once', () => {
    expect(itemsOf('p', entries, [], false).map((item) => `${item.type} ${item.name}`)).toEqual(['file p/a.txt', 'folder p/sub', 'folder p/z']);
  });
  test('recursive: every file and every folder', () => {
    expect(itemsOf('p', entries, [], true).map((item) => item.name)).toEqual(['p/a.txt', 'p/sub', 'p/sub/b.txt', 'p/sub/deep', 'p/sub/deep/c.txt', 'p/z', 'p/z/d.txt']);
  });
  test('the top of the storage', () => {
    expect(itemsOf('', [file('a'), file('b/c')], [], false).map((item) => item.name)).toEqual(['a', 'b']);
  });
});

describe('failures in words', () => {
  const refused = new RxferError('CONNECTION_LOST', 'cannot connect to 10.0.0.1:9000: ECONNREFUSED', { host: '10.0.0.1', port: 9000, reason: 'ECONNREFUSED' });
  test('connection refused names host and port and asks about rxfer serve', () => {
    expect(explainFailure(refused)).toMatchObject({ code: 'CONNECTION_LOST', exit: 1, message: 'could not connect to 10.0.0.1:9000 — is `rxfer serve` running there? (connection refused)' });
  });
  test('an IPv6 address is shown in brackets', () => {
    const v6 = new RxferError('CONNECTION_LOST', 'x', { host: '::1', port: 9, reason: 'ECONNREFUSED' });
    expect(explainFailure(v6).message).toContain('could not connect to [::1]:9 ');
  });
  test('USAGE and CONFIG_INVALID exit 2; anything else 1; unknown throwables are INTERNAL', () => {
    expect(explainFailure(new RxferError('USAGE', 'u')).exit).toBe(2);
    expect(explainFailure(new RxferError('CONFIG_INVALID', 'c')).exit).toBe(2);
    expect(explainFailure(new RxferError('NOT_FOUND', 'n')).exit).toBe(1);
    expect(explainFailure(new Error('boom'))).toMatchObject({ code: 'INTERNAL', exit: 1, message: 'boom' });
  });
  test('--json: one line of JSON with code, message, exit and detail', () => {
    expect(JSON.parse(formatFailure(explainFailure(refused), true))).toEqual({ code: 'CONNECTION_LOST', message: expect.stringContaining('rxfer serve'), exit: 1, detail: refused.detail });
    expect(formatFailure(explainFailure(new RxferError('EXISTS', 'b exists')), false)).toBe('rxfer: ERR EXISTS b exists\n');
  });
});

describe('local folders and links', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-cli-rules-'));
    await mkdir(join(dir, 'tree', 'empty', 'deeper'), { recursive: true });
    await mkdir(join(dir, 'tree', 'full'));
    await writeFile(join(dir, 'tree', 'full', 'f'), 'f');
    await symlink('/etc', join(dir, 'tree', 'out'));
    await writeFile(join(dir, 'real'), 'r');
    await symlink('real', join(dir, 'link'));
    await symlink('/proc/self/fd/2', join(dir, 'err'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('put -r: the deepest empty folders, and what is skipped', async () => {
    expect(await localOddities(join(dir, 'tree'))).toEqual({ emptyFolders: ['empty/deeper'], skipped: ['out'], unfinished: [] });
  });

  test('put -r: rxfer`s own unfinished downloads are told apart; a folder holding only one counts as empty', async () => {
    const tree = join(dir, 'tree2');
    await mkdir(join(tree, 'only'), { recursive: true });
    await writeFile(join(tree, 'big'), 'b');
    await writeFile(join(tree, '.big.rxfer-resume'), 'kept');
    await writeFile(join(tree, 'only', '.x.rxfer-resume.lock'), '123');
    const odd = await localOddities(tree);
    expect({ ...odd, unfinished: [...odd.unfinished].sort() }).toEqual({ emptyFolders: ['only'], skipped: [], unfinished: ['.big.rxfer-resume', 'only/.x.rxfer-resume.lock'] });
  });

  test('get targets: a folder, a link written through, stdout, a descriptor link, a missing folder', () => {
    expect(planGetTarget('x/a.txt', `${dir}/`)).toEqual({ kind: 'file', path: join(dir, 'a.txt') });
    expect(planGetTarget('x/a.txt', join(dir, 'link'))).toEqual({ kind: 'file', path: join(dir, 'real'), throughLink: join(dir, 'link') });
    expect(planGetTarget('x/a.txt', '-')).toEqual({ kind: 'stdout' });
    expect(planGetTarget('x/a.txt', '/dev/stdout')).toEqual({ kind: 'stdout' });
    expect(planGetTarget('x/a.txt', join(dir, 'err'))).toEqual({ kind: 'stream', path: join(dir, 'err') });
    expect(() => planGetTarget('x/a.txt', join(dir, 'nosuch') + '/')).toThrow(/there is no folder/);
    expect(() => planGetTarget('x/a.txt', join(dir, 'real', 'x'))).toThrow(/is a file, not a folder/);
  });
});
