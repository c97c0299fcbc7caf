import { existsSync } from 'node:fs';
import { lstat, readFile, readdir, realpath, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import fc from 'fast-check';
import { RxferClient } from '../../src/client';
import { RxferError } from '../../src/errors/rxfer-error';
import { parseRemoteName, printableName } from '../../src/protocol/remote-name';
import { CANARY, HOSTILE_NAMES, HostileName } from './support/hostile-names';
import { SecureServer, diffSnapshots, makeUser, snapshot, stagingFiles, startSecureServer, type Entry } from './support/server';
import { Wire, sha256 } from './support/wire';

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const NAME_INVALID = /^ERR NAME_INVALID /;

const isInside = (root: string, path: string): boolean => {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
};

const validUtf8 = (bytes: Buffer): boolean => Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);

/** Names containing the canary anywhere an escape could have put them (the whole temp base, and the usual targets). */
const canarySightings = async (base: string, userRoot: string): Promise<string[]> => {
  const found: string[] = [];
  for (const [path] of await snapshot(base, [userRoot])) if (path.includes(CANARY)) found.push(join(base, path));
  for (const dir of new Set(['/', '/tmp', tmpdir(), dirname(base), process.cwd(), dirname(dirname(base))])) {
    for (const name of await readdir(dir).catch(() => [] as string[])) if (name.includes(CANARY)) found.push(join(dir, name));
  }
  return found;
};

/** Where a naive server (no checks; or one that maps "\" to "/") would have put this name. */
const naiveTargets = (userRoot: string, text: string): string[] => [resolve(userRoot, text), resolve(userRoot, text.split('\\').join('/'))];

interface Scenario {
  readonly title: string;
  /** Starts the server; returns it, the user's root folder on disk, and the AUTH token if any. */
  start(): Promise<{ server: SecureServer; userRoot: string; token?: string }>;
}

const SCENARIOS: Scenario[] = [
  {
    title: 'anonymous writer, root "" (the user root is the storage root)',
    start: async () => {
      const server = await startSecureServer({ limits: { maxLineBytes: 16_384 }, auth: { anonymous: 'write' } });
      return { server, userRoot: server.root };
    },
  },
  {
    title: 'authenticated writer jailed in "jail/inner" (the rest of the storage is outside)',
    start: async () => {
      const user = await makeUser('jailed', 'write', 'jail/inner');
      const server = await startSecureServer({ limits: { maxLineBytes: 16_384 }, auth: { users: [user.entry] } });
      return { server, userRoot: join(server.root, 'jail', 'inner'), token: user.token };
    },
  },
];

test('the corpus has at least 200 names, each label unique per expectation, and no legal name shadows another', () => {
  expect(HOSTILE_NAMES.length).toBeGreaterThanOrEqual(200);
  const allowed = HOSTILE_NAMES.filter((name) => name.expect === 'allowed').map((name) => name.bytes.toString('utf8'));
  expect(HOSTILE_NAMES.filter((name) => name.expect === 'invalid').length).toBeGreaterThanOrEqual(200);
  // A legal name used as a folder by another legal name would turn one of them into NAME_CONFLICT.
  for (const name of allowed) for (const other of allowed) if (other !== name) expect(other.startsWith(`${name}/`)).toBe(false);
  expect(new Set(allowed).size).toBe(allowed.length);
});

describe.each(SCENARIOS)('hostile names over a raw socket: $title', ({ start }) => {
  let server: SecureServer;
  let userRoot: string;
  let token: string | undefined;
  let wire: Wire | undefined;
  let outsideBefore: Map<string, Entry>;
  let passwdBefore: { mtimeMs: number; size: number } | undefined;

  /** Everything the user must not be able to touch: the base minus the user's root and the server's metadata. */
  const outside = () => snapshot(server.base, [userRoot, join(server.root, '.rxfer')]);
  const userTree = async () => {
    const tree = await snapshot(userRoot, [join(userRoot, '.rxfer')]);
    return tree;
  };

  const connection = async (): Promise<Wire> => {
    if (wire && !wire.isEnded) return wire;
    wire = await Wire.open(server.port);
    if (token) expect(await wire.auth(token)).toBe(`OK auth jailed write`);
    return wire;
  };

  beforeAll(async () => {
    ({ server, userRoot, token } = await start());
    // Things that are inside the storage but outside this user's root: must stay untouched.
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(server.root, 'other'), { recursive: true });
    await writeFile(join(server.root, 'other', 'x'), 'another user\n');
    await mkdir(userRoot, { recursive: true });
    outsideBefore = await outside();
    passwdBefore = await stat('/etc/passwd').then(
      (s) => ({ mtimeMs: s.mtimeMs, size: s.size }),
      () => undefined,
    );
  });

  afterAll(async () => {
    wire?.destroy();
    await server.close();
  });

  const check = async (entry: HostileName, index: number): Promise<void> => {
    const conn = await connection();
    const data = Buffer.from(`probe ${index}\n`);
    const text = entry.bytes.toString('utf8');
    const before = entry.expect === 'invalid' ? await userTree() : undefined;

    const upload = await conn.upload(entry.bytes, data);
    const failed = upload[upload.length - 1]!.startsWith('ERR');
    if (entry.expect === 'either' && failed) {
      // Legal on the wire, too long for the file system: refused as a name, at the header or at commit.
      expect(upload[upload.length - 1]).toMatch(NAME_INVALID);
      expect((await conn.download(entry.bytes)).reply).toMatch(/^ERR NAME_INVALID |^NOT FOUND /);
    } else if (entry.expect === 'invalid') {
      expect(upload).toEqual([expect.stringMatching(NAME_INVALID)]);
      // The reply's message is one line without raw control characters.
      expect(upload[0]).not.toMatch(CONTROL);
      const download = await conn.download(entry.bytes);
      expect(download.reply).toMatch(NAME_INVALID);
      expect(download.data).toBeUndefined();
      if (before) expect(diffSnapshots(before, await userTree())).toEqual([]);
    } else {
      expect(upload).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`]);
      // Stored under exactly that name, with no link on the way, strictly inside the user's root.
      const path = join(userRoot, ...text.split('/'));
      expect(isInside(userRoot, path)).toBe(true);
      expect(await realpath(path)).toBe(path);
      expect((await lstat(path)).isFile()).toBe(true);
      expect(await readFile(path)).toEqual(data);
      const download = await conn.download(entry.bytes);
      expect(download.reply).toBe(`OK ${data.length} ${sha256(data)}`);
      expect(download.data).toEqual(data);
    }
    // A naive resolution of a traversal name must not exist.
    if (text.includes(CANARY)) for (const target of naiveTargets(userRoot, text)) expect(existsSync(target) && !isInside(userRoot, target)).toBe(false);
  };

  test.each(HOSTILE_NAMES.map((entry, index) => [`${entry.expect.padEnd(7)} ${entry.group}: ${entry.label}`, entry, index] as const))(
    '%s',
    async (_title, entry, index) => check(entry, index),
  );

  test('after the whole corpus: nothing appeared or changed outside the user root, no staging file is left', async () => {
    expect(diffSnapshots(outsideBefore, await outside())).toEqual([]);
    expect(await canarySightings(server.base, userRoot)).toEqual([]);
    expect(await stagingFiles(server.root)).toEqual([]);
    if (passwdBefore) {
      const now = await stat('/etc/passwd');
      expect({ mtimeMs: now.mtimeMs, size: now.size }).toEqual(passwdBefore);
    }
  });

  test('the server still serves a normal client', async () => {
    const client = await RxferClient.connect({ host: '127.0.0.1', port: server.port, ...(token && { token }) });
    try {
      const data = Buffer.from('still alive\n');
      await client.uploadBuffer('after-the-corpus/ok.txt', data);
      expect((await client.downloadBuffer('after-the-corpus/ok.txt')).data).toEqual(data);
      expect(await readFile(join(userRoot, 'after-the-corpus', 'ok.txt'))).toEqual(data);
    } finally {
      await client.quit();
    }
  });
});

describe('conflicts between files and folders', () => {
  let server: SecureServer;
  beforeAll(async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
  });
  afterAll(() => server.close());

  test('a folder where the file would go is NAME_CONFLICT', async () => {
    const wire = await Wire.open(server.port);
    try {
      expect(await wire.upload('dir/inner', 'x')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /)]);
      // Refused at the header or (small files skip the look) at commit: either way NAME_CONFLICT, nothing stored.
      expect((await wire.upload('dir', 'x')).pop()).toMatch(/^ERR NAME_CONFLICT /);
      expect((await lstat(join(server.root, 'dir'))).isDirectory()).toBe(true);
    } finally {
      wire.destroy();
    }
  });

  // Regression (fixed in 23a3f3a): mkdir -p through an existing file failed with EEXIST, reported as
  // EXISTS instead of NAME_CONFLICT as PROTOCOL.md specifies for "a file where a folder is needed".
  test('a file where a folder is needed is NAME_CONFLICT (not EXISTS)', async () => {
    const wire = await Wire.open(server.port);
    try {
      expect(await wire.upload('plain', 'x')).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv /)]);
      expect((await wire.upload('plain/below', 'x')).pop()).toMatch(/^ERR NAME_CONFLICT /);
    } finally {
      wire.destroy();
    }
  });
});

// ---- properties over generated names, against one long-lived server --------------------------------------

const FRAGMENTS = [
  '..', '.', '/', '//', '\\', 'a', 'b', 'x.txt', 'C:', 'c:', 'con', 'CON.txt', 'nul', 'com1', '.rxfer', '.rxfer-part-', '%2e', '%2f',
  '\u0000', '\u001b[31m', '\u0085', '\u009b', '\u007f', '\t', '\r', '\u202e', '\uff0e', '\uff0f', '\u2215', ' ', '~', '\u00e9', 'e\u0301',
  '\ud83d\ude00', CANARY,
];
const structuredName = fc.array(fc.constantFrom(...FRAGMENTS), { minLength: 1, maxLength: 8 }).map((parts) => Buffer.from(parts.join('')));
const unicodeName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).map((text) => Buffer.from(text));
const binaryName = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }).map((text) => Buffer.from(text));
const byteName = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => Buffer.from(bytes));
/** A name line for the wire: never contains LF (it would end the line). */
const wireName = fc.oneof(structuredName, unicodeName, binaryName, byteName).map((bytes) => Buffer.from(bytes.map((b) => (b === 0x0a ? 0x2f : b))));

/** What the spec says about a name: it must be refused, must be accepted, or may be either (stricter reserved names). */
const specVerdict = (bytes: Buffer): 'reject' | 'accept' | 'may' => {
  if (bytes.length === 0 || bytes.length > 4096 || !validUtf8(bytes)) return 'reject';
  const text = bytes.toString('utf8');
  if (CONTROL.test(text) || text.includes('\\') || text.startsWith('/') || /^[a-z]:/i.test(text)) return 'reject';
  if (text.normalize('NFC') !== text) return 'reject';
  let may = false;
  for (const segment of text.split('/')) {
    if (segment === '' || segment === '.' || segment === '..' || /[. ]$/.test(segment)) return 'reject';
    if (Buffer.byteLength(segment) > 255 || segment.toLowerCase().startsWith('.rxfer')) return 'reject';
    if (/^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i.test(segment)) return 'reject';
    // Stricter than the list in PROTOCOL.md but reserved on current Windows: the server may refuse them.
    if (/^(com|lpt)[0\u00b9\u00b2\u00b3]|^conin\$|^conout\$/i.test(segment)) may = true;
  }
  return may ? 'may' : 'accept';
};

describe('fast-check: generated names against a real server', () => {
  let server: SecureServer;
  let wire: Wire;
  let outsideBefore: Map<string, Entry>;

  beforeAll(async () => {
    server = await startSecureServer({ auth: { anonymous: 'write' } });
    wire = await Wire.open(server.port);
    outsideBefore = await snapshot(server.base, [server.root]);
  });
  afterAll(async () => {
    wire.destroy();
    await server.close();
  });

  test('every name is NAME_INVALID (or a folder/file conflict), or stored under exactly that name inside the root', async () => {
    let counter = 0;
    await fc.assert(
      fc.asyncProperty(wireName, async (line) => {
        if (wire.isEnded) wire = await Wire.open(server.port);
        // The decoder drops one CR before the LF (telnet-style lines): that is the name the server sees.
        const name = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
        const verdict = specVerdict(name);
        const data = Buffer.from(`generated ${++counter}\n`);
        const upload = await wire.upload(line, data);
        const download = await wire.download(line);
        const reply = upload[upload.length - 1]!;
        if (reply.startsWith('ERR ')) {
          if (/^ERR NAME_CONFLICT /.test(reply)) {
            // Only when a file stands where a folder is needed, or a folder where the file would go.
            const segments = name.toString('utf8').split('/');
            const blockers = await Promise.all(
              segments.map((_, i) =>
                lstat(join(server.root, ...segments.slice(0, i + 1))).then(
                  (s) => (i < segments.length - 1 ? !s.isDirectory() : s.isDirectory()),
                  () => false,
                ),
              ),
            );
            expect(verdict).not.toBe('reject');
            expect(blockers).toContain(true);
            return;
          }
          expect(reply).toMatch(NAME_INVALID);
          expect(reply).not.toMatch(CONTROL);
          expect(verdict).not.toBe('accept');
          // One resolver for every command: DOWNLOAD refuses what UPLOAD refused.
          expect(download.reply).toMatch(NAME_INVALID);
          return;
        }
        expect(verdict).not.toBe('reject');
        expect(upload).toEqual(['OK file recv', `OK file data recv ${data.length} ${sha256(data)}`]);
        const path = join(server.root, ...name.toString('utf8').split('/'));
        expect(isInside(server.root, path)).toBe(true);
        expect(await realpath(path)).toBe(path);
        expect(await readFile(path)).toEqual(data);
        expect(download.reply).toBe(`OK ${data.length} ${sha256(data)}`);
        expect(download.data).toEqual(data);
      }),
      { numRuns: 300 },
    );
    expect(diffSnapshots(outsideBefore, await snapshot(server.base, [server.root]))).toEqual([]);
    expect(await canarySightings(server.base, server.root)).toEqual([]);
    expect(await stagingFiles(server.root)).toEqual([]);
  });
});

// ---- unit-level properties of the one name checker and the printer ---------------------------------------

const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.array(fc.constantFrom(...FRAGMENTS, '\n', '\u2028'), { maxLength: 10 }).map((parts) => parts.join('')),
);

const assertSafeName = (name: string): void => {
  expect(Buffer.byteLength(name)).toBeLessThanOrEqual(4096);
  expect(name).not.toMatch(CONTROL);
  expect(name.includes('\\')).toBe(false);
  expect(name.startsWith('/')).toBe(false);
  expect(/^[a-z]:/i.test(name)).toBe(false);
  for (const segment of name.split('/')) {
    expect(['', '.', '..']).not.toContain(segment);
    expect(Buffer.byteLength(segment)).toBeLessThanOrEqual(255);
    expect(/[. ]$/.test(segment)).toBe(false);
    expect(segment.toLowerCase().startsWith('.rxfer')).toBe(false);
  }
  // Whatever it is, joining it to a root stays strictly below the root.
  expect(isInside('/srv/root', join('/srv/root', name))).toBe(true);
};

describe('fast-check: parseRemoteName and printableName', () => {
  test('parseRemoteName(string) returns only safe names, unchanged, or throws NAME_INVALID', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        let parsed: string;
        try {
          parsed = parseRemoteName(text);
        } catch (err) {
          expect(err).toBeInstanceOf(RxferError);
          expect((err as RxferError).code).toBe('NAME_INVALID');
          return;
        }
        assertSafeName(parsed);
        // Well-formed input is returned as is: no silent normalisation that a later check could miss.
        if (validUtf8(Buffer.from(text)) && Buffer.from(text).toString('utf8') === text) expect(parsed).toBe(text);
        expect(specVerdict(Buffer.from(parsed))).not.toBe('reject');
      }),
      { numRuns: 3000 },
    );
  });

  test('parseRemoteName(bytes) accepts only valid UTF-8 that decodes to a safe name', () => {
    fc.assert(
      fc.property(fc.oneof(byteName, structuredName, binaryName), (bytes) => {
        let parsed: string;
        try {
          parsed = parseRemoteName(bytes);
        } catch (err) {
          expect((err as RxferError).code).toBe('NAME_INVALID');
          expect(specVerdict(bytes)).not.toBe('accept');
          return;
        }
        expect(Buffer.from(parsed, 'utf8').equals(bytes)).toBe(true);
        assertSafeName(parsed);
        expect(specVerdict(bytes)).not.toBe('reject');
      }),
      { numRuns: 3000 },
    );
  });

  test('printableName never outputs a control or bidi-override character, and leaves names without them unchanged', () => {
    // Controls, plus the characters that reorder or break a line on a terminal (U+202E and friends).
    const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
    fc.assert(
      fc.property(anyText, (text) => {
        const shown = printableName(text);
        expect(shown).not.toMatch(UNSAFE);
        if (!UNSAFE.test(text)) expect(shown).toBe(text);
      }),
      { numRuns: 3000 },
    );
    for (let code = 0; code <= 0x9f; code++) {
      if (code >= 0x20 && code < 0x7f) continue;
      expect(printableName(`a${String.fromCharCode(code)}b`)).not.toMatch(CONTROL);
    }
    expect(printableName('\u001b[31mred\u001b[0m')).toBe('\\x1b[31mred\\x1b[0m');
    expect(printableName('invoice\u202Efdp.exe')).toBe('invoice\\u202efdp.exe');
  });
});
