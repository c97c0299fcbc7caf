import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { TOKEN_HASH_PATTERN, verifyToken } from '../../src/auth/token';
import { RxferClient } from '../../src/client';
import { parseConfig } from '../../src/config/load-config';
import { RxferError } from '../../src/errors/rxfer-error';
import { SecureServer, TestUser, makeUser, stagingFiles, startSecureServer, userFiles } from './support/server';
import { Wire, eventually, sha256, uploadBytes } from './support/wire';

const run = promisify(execFile);
const CLI = join(__dirname, '..', '..', 'bin', 'rxfer.js');

let alice: TestUser;
let bob: TestUser;
let reader: TestUser;
let admin: TestUser;

beforeAll(async () => {
  [alice, bob, reader, admin] = await Promise.all([
    makeUser('alice', 'write', 'alice'),
    makeUser('bob', 'write', 'bob'),
    makeUser('reader', 'read', 'shared'),
    makeUser('admin', 'admin', ''),
  ]);
});

/** The secret part of a token (after the last dot). */
const secretOf = (token: string): string => token.slice(token.lastIndexOf('.') + 1);

describe('token authentication (anonymous: none)', () => {
  let server: SecureServer;
  const wires: Wire[] = [];
  const open = async () => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    return wire;
  };

  beforeAll(async () => {
    server = await startSecureServer({ auth: { users: [alice, bob, reader, admin].map((user) => user.entry) } });
    await mkdir(join(server.root, 'shared'), { recursive: true });
    await writeFile(join(server.root, 'shared', 'readme.txt'), 'for readers\n');
  });
  afterEach(() => {
    for (const wire of wires.splice(0)) wire.destroy();
  });
  afterAll(() => server.close());

  test('the greeting says auth=required, and anonymous is off because users are configured', async () => {
    const wire = await open();
    expect(wire.greeting).toMatch(/^OK rxfer\/1 .*\bauth=required\b/);
    expect(server.config.auth.anonymous).toBe('none');
  });

  test.each([
    ['a wrong secret for a known user', () => 'alice.' + 'A'.repeat(43)],
    ["alice's name with bob's secret", () => `alice.${secretOf(bob.token)}`],
    ["bob's token with a flipped last character", () => bob.token.slice(0, -1) + (bob.token.endsWith('A') ? 'B' : 'A')],
    ['an unknown user', () => `mallory.${secretOf(alice.token)}`],
    ['a token without a user part', () => secretOf(alice.token)],
    ['a user name only', () => 'alice.'],
  ])('%s: ERR AUTH_FAILED, then the server closes the connection', async (_what, token) => {
    const wire = await open();
    const reply = await wire.auth(token());
    expect(reply).toBe('ERR AUTH_FAILED unknown user or wrong token');
    // Closed by the server: nothing more comes, and the next request is never answered.
    expect((await wire.serverClosed()).toString()).toBe('');
  });

  test('requests pipelined behind a failed AUTH have no effect', async () => {
    // Count relative to what is there (sessions of peers of earlier tests may still be winding down).
    const sessionsBefore = server.connections();
    const wire = await open();
    await wire.send(Buffer.concat([Buffer.from(`AUTH alice.${secretOf(bob.token)}\n`), uploadBytes('pipelined.txt', 'should never be stored\n')]));
    expect(await wire.line()).toMatch(/^ERR AUTH_FAILED /);
    expect((await wire.serverClosed()).toString()).toBe('');
    await eventually(() => server.connections() === sessionsBefore, 'the session to end');
    expect(await userFiles(server.root)).not.toContainEqual(expect.stringContaining('pipelined'));
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test('requests pipelined behind a good AUTH run as that user', async () => {
    const wire = await open();
    await wire.send(Buffer.concat([Buffer.from(`AUTH ${alice.token}\n`), uploadBytes('pipelined-ok.txt', 'alice wrote this\n')]));
    expect(await wire.line()).toBe('OK auth alice write');
    expect(await wire.line()).toBe('OK file recv');
    expect(await wire.line()).toMatch(/^OK file data recv /);
    expect(await readFile(join(server.root, 'alice', 'pipelined-ok.txt'), 'utf8')).toBe('alice wrote this\n');
  });

  test('without AUTH every file command is ERR AUTH_REQUIRED, the connection stays usable, nothing is written', async () => {
    const before = await userFiles(server.root);
    const wire = await open();
    expect(await wire.upload('anon.txt', 'anonymous data\n')).toEqual([expect.stringMatching(/^ERR AUTH_REQUIRED /)]);
    expect(await wire.upload('anon2.txt', 'anonymous data\n', 'ADDFILE')).toEqual([expect.stringMatching(/^ERR AUTH_REQUIRED /)]);
    expect((await wire.download('shared/readme.txt')).reply).toMatch(/^ERR AUTH_REQUIRED /);
    expect((await wire.download('readme.txt')).reply).toMatch(/^ERR AUTH_REQUIRED /);
    // Still in step: AUTH now works on the same connection.
    expect(await wire.auth(reader.token)).toBe('OK auth reader read');
    expect((await wire.download('readme.txt')).data?.toString()).toBe('for readers\n');
    expect(await userFiles(server.root)).toEqual(before);
  });

  test('a read-only user: UPLOAD and ADDFILE are ERR FORBIDDEN and write nothing; DOWNLOAD works', async () => {
    const before = await userFiles(server.root);
    const wire = await open();
    expect(await wire.auth(reader.token)).toBe('OK auth reader read');
    expect(await wire.upload('new.txt', 'nope\n')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
    expect(await wire.upload('readme.txt', 'overwrite attempt\n')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
    expect(await wire.upload('added.txt', 'nope\n', 'ADDFILE')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
    const { reply, data } = await wire.download('readme.txt');
    expect(reply).toBe(`OK 12 ${sha256('for readers\n')}`);
    expect(data?.toString()).toBe('for readers\n');
    expect(await userFiles(server.root)).toEqual(before);
    expect(await readFile(join(server.root, 'shared', 'readme.txt'), 'utf8')).toBe('for readers\n');
    expect(await stagingFiles(server.root)).toEqual([]);
  });

  test("alice and bob each see only their own root; names are relative to it", async () => {
    const a = await open();
    const b = await open();
    expect(await a.auth(alice.token)).toBe('OK auth alice write');
    expect(await b.auth(bob.token)).toBe('OK auth bob write');

    expect(await a.upload('x', 'alice x\n')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 8 /)]);
    expect(await readFile(join(server.root, 'alice', 'x'), 'utf8')).toBe('alice x\n');
    expect((await b.download('x')).reply).toMatch(/^NOT FOUND /);

    expect(await b.upload('x', 'bob x\n')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 6 /)]);
    expect(await readFile(join(server.root, 'bob', 'x'), 'utf8')).toBe('bob x\n');
    expect(await readFile(join(server.root, 'alice', 'x'), 'utf8')).toBe('alice x\n');
    expect((await a.download('x')).data?.toString()).toBe('alice x\n');
    expect((await b.download('x')).data?.toString()).toBe('bob x\n');

    // No way to name the other root: the storage path of alice's "bob/x" is alice/bob/x.
    expect((await a.download('bob/x')).reply).toMatch(/^NOT FOUND /);
    for (const name of ['../bob/x', '/bob/x', '..\\bob\\x', 'alice/../../bob/x']) {
      expect((await a.download(name)).reply).toMatch(/^ERR NAME_INVALID /);
      expect(await a.upload(name, 'overwrite\n')).toEqual([expect.stringMatching(/^ERR NAME_INVALID /)]);
    }
    expect(await readFile(join(server.root, 'bob', 'x'), 'utf8')).toBe('bob x\n');
  });

  test('an admin with root "" sees and writes everything', async () => {
    const wire = await open();
    expect(await wire.auth(admin.token)).toBe('OK auth admin admin');
    await writeFile(join(server.root, 'alice', 'for-admin.txt'), 'alice file\n');
    expect((await wire.download('alice/for-admin.txt')).data?.toString()).toBe('alice file\n');
    expect((await wire.download('shared/readme.txt')).data?.toString()).toBe('for readers\n');
    expect(await wire.upload('bob/from-admin.txt', 'hello bob\n')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /)]);
    expect(await readFile(join(server.root, 'bob', 'from-admin.txt'), 'utf8')).toBe('hello bob\n');
    // Even an admin stays inside the storage.
    expect((await wire.download('../sentinel/secret.txt')).reply).toMatch(/^ERR NAME_INVALID /);
  });

  test('the client library sends the token and reports a wrong one as AUTH_FAILED', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, token: bob.token });
    await client.uploadBuffer('via-client.txt', Buffer.from('client\n'));
    expect((await client.downloadBuffer('via-client.txt')).data.toString()).toBe('client\n');
    await client.quit();
    expect(await readFile(join(server.root, 'bob', 'via-client.txt'), 'utf8')).toBe('client\n');

    const failure = await RxferClient.connect({ host: '127.0.0.1', port: server.port, token: `bob.${secretOf(alice.token)}` }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(RxferError);
    expect((failure as RxferError).code).toBe('AUTH_FAILED');
  });

  test('the parsed config holds only hashes, never a token or its secret', () => {
    const text = JSON.stringify(server.config);
    for (const user of [alice, bob, reader, admin]) {
      expect(text).not.toContain(user.token);
      expect(text).not.toContain(secretOf(user.token));
      const entry = server.config.auth.users.find((candidate) => candidate.name === user.entry.name)!;
      expect(entry.tokenHash).toMatch(TOKEN_HASH_PATTERN);
      expect(Object.keys(entry)).not.toContain('token');
    }
    // A plain token where a hash belongs is a config error, not a working login.
    expect(() => parseConfig({ auth: { users: [{ name: 'eve', tokenHash: alice.token, root: 'eve' }] } })).toThrow(/tokenHash/);
  });
});

describe('anonymous access levels', () => {
  test("anonymous 'read' may download but not upload (ERR FORBIDDEN)", async () => {
    const server = await startSecureServer({ auth: { anonymous: 'read', anonymousRoot: 'public', users: [alice.entry] } });
    try {
      await mkdir(join(server.root, 'public'), { recursive: true });
      await writeFile(join(server.root, 'public', 'hello.txt'), 'hello world\n');
      const wire = await Wire.open(server.port);
      try {
        expect(wire.greeting).toMatch(/\bauth=optional\b/);
        expect((await wire.download('hello.txt')).data?.toString()).toBe('hello world\n');
        expect(await wire.upload('hello.txt', 'defaced\n')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
        expect(await wire.upload('new.txt', 'new\n', 'ADDFILE')).toEqual([expect.stringMatching(/^ERR FORBIDDEN /)]);
        // The anonymous root is a root like any other.
        expect((await wire.download('../alice/x')).reply).toMatch(/^ERR NAME_INVALID /);
        expect(await userFiles(server.root)).toEqual(['public/hello.txt']);
        expect(await readFile(join(server.root, 'public', 'hello.txt'), 'utf8')).toBe('hello world\n');
      } finally {
        wire.destroy();
      }
    } finally {
      await server.close();
    }
  });

  test("a failed AUTH closes the connection even where anonymous writing is allowed, and pipelined writes do nothing", async () => {
    const server = await startSecureServer({ auth: { anonymous: 'write', users: [alice.entry] } });
    try {
      const wire = await Wire.open(server.port);
      try {
        await wire.send(Buffer.concat([Buffer.from('AUTH alice.wrong\n'), uploadBytes('after-failed-auth.txt', 'no\n')]));
        expect(await wire.line()).toMatch(/^ERR AUTH_FAILED /);
        expect((await wire.serverClosed()).toString()).toBe('');
        await eventually(() => server.connections() === 0, 'the session to end');
        expect(await userFiles(server.root)).toEqual([]);
        expect(await stagingFiles(server.root)).toEqual([]);
      } finally {
        wire.destroy();
      }
    } finally {
      await server.close();
    }
  });
});

describe('secrets in logs', () => {
  test('no token or secret appears in the server log, even at trace level', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
    const server = await startSecureServer({ auth: { users: [alice.entry, bob.entry] }, logger });
    try {
      const good = await Wire.open(server.port);
      expect(await good.auth(alice.token)).toBe('OK auth alice write');
      expect(await good.upload('logged.txt', 'x')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /)]);
      good.destroy();
      const bad = await Wire.open(server.port);
      const wrong = `bob.${secretOf(alice.token)}`;
      expect(await bad.auth(wrong)).toMatch(/^ERR AUTH_FAILED /);
      await bad.serverClosed();
      bad.destroy();
      const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, token: bob.token });
      await client.quit();
      const log = lines.join('');
      expect(lines.length).toBeGreaterThan(0);
      for (const secret of [alice.token, bob.token, secretOf(alice.token), secretOf(bob.token), wrong]) expect(log).not.toContain(secret);
    } finally {
      await server.close();
    }
  });
});

describe('rxfer token (CLI)', () => {
  test('--json prints a token and a config entry whose hash verifies against it, and the token logs in', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'token', '--user', 'carol', '--role', 'read', '--root', 'shared', '--quota', '1000', '--json']);
    const printed = JSON.parse(stdout) as { token: string; user: { name: string; role: string; root: string; quotaBytes: number; tokenHash: string } };
    expect(printed.token.startsWith('carol.')).toBe(true);
    expect(printed.user).toEqual({ name: 'carol', role: 'read', root: 'shared', quotaBytes: 1000, tokenHash: expect.stringMatching(TOKEN_HASH_PATTERN) });
    expect(JSON.stringify(printed.user)).not.toContain(secretOf(printed.token));
    expect(await verifyToken(printed.token, printed.user.tokenHash)).toBe(true);
    expect(await verifyToken(`${printed.token}x`, printed.user.tokenHash)).toBe(false);
    expect(await verifyToken(alice.token, printed.user.tokenHash)).toBe(false);

    // The entry is usable as is.
    const server = await startSecureServer({ auth: { users: [printed.user as never] } });
    try {
      const wire = await Wire.open(server.port);
      try {
        expect(await wire.auth(printed.token)).toBe('OK auth carol read');
      } finally {
        wire.destroy();
      }
    } finally {
      await server.close();
    }
  });

  test('two runs give different tokens and salts', async () => {
    const [one, two] = await Promise.all(
      [1, 2].map(async () => JSON.parse((await run(process.execPath, [CLI, 'token', '--user', 'dave', '--json'])).stdout) as { token: string; user: { tokenHash: string } }),
    );
    expect(one!.token).not.toBe(two!.token);
    expect(one!.user.tokenHash).not.toBe(two!.user.tokenHash);
  });
});
