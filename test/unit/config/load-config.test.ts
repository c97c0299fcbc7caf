import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../../src/config/load-config';
import { RxferError } from '../../../src/errors/rxfer-error';

const DEFAULTS = {
  server: { host: '127.0.0.1', port: 9000, maxConnections: 256, shutdownGraceMs: 10_000 },
  storage: { kind: 'local', root: './data' },
  limits: { maxLineBytes: 4096, maxFileBytes: 1024 ** 4, idleTimeoutMs: 300_000 },
  log: { level: 'info' },
};

const configError = (fn: () => unknown): RxferError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RxferError);
    expect((err as RxferError).code).toBe('CONFIG_INVALID');
    return err as RxferError;
  }
  throw new Error('the config was accepted');
};

describe('parseConfig', () => {
  test('an empty object gives the documented defaults', () => {
    expect(parseConfig({})).toMatchObject(DEFAULTS);
  });

  test('a partial section keeps the defaults of its other keys', () => {
    const config = parseConfig({ server: { port: 0 }, limits: { idleTimeoutMs: 1000 } });
    expect(config.server).toMatchObject({ ...DEFAULTS.server, port: 0 });
    expect(config.limits).toMatchObject({ ...DEFAULTS.limits, idleTimeoutMs: 1000 });
  });

  test.each([
    ['a wrong type', { server: { port: '9000' } }, 'server.port'],
    ['a port out of range', { server: { port: 70_000 } }, 'server.port'],
    ['a fractional number', { limits: { maxLineBytes: 300.5 } }, 'limits.maxLineBytes'],
    ['a limit below its minimum', { limits: { maxLineBytes: 10 } }, 'limits.maxLineBytes'],
    ['an idle timeout below its minimum', { limits: { idleTimeoutMs: 0 } }, 'limits.idleTimeoutMs'],
    ['an unknown storage kind', { storage: { kind: 's4' } }, 'storage.kind'],
    ['an unknown log level', { log: { level: 'loud' } }, 'log.level'],
    ['a section of the wrong type', { limits: 5 }, 'limits'],
  ])('%s: CONFIG_INVALID naming %s', (_label, input, key) => {
    expect(configError(() => parseConfig(input)).message).toContain(`${key}:`);
  });

  test('an unknown key: CONFIG_INVALID naming the section and the key', () => {
    const message = configError(() => parseConfig({ server: { prot: 9000 } })).message;
    expect(message).toContain('server');
    expect(message).toContain('prot');
  });

  test('an unknown top-level key: CONFIG_INVALID naming it', () => {
    expect(configError(() => parseConfig({ serverr: {} })).message).toContain('serverr');
  });

  test('every problem is reported, not only the first', () => {
    const message = configError(() => parseConfig({ server: { port: -1 }, log: { level: 'x' } })).message;
    expect(message).toContain('server.port');
    expect(message).toContain('log.level');
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rxfer-config-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  test('without a file: the defaults', () => {
    expect(loadConfig()).toMatchObject(DEFAULTS);
    expect(loadConfig()).toEqual(parseConfig({}));
  });

  test('config/default.json loads and is the embedded defaults written out', () => {
    expect(loadConfig({ configPath: join(__dirname, '../../../config/default.json') })).toEqual(loadConfig());
  });

  test('a file sets what it names; the rest stays default', async () => {
    const path = await file('c.json', JSON.stringify({ server: { port: 1234 }, storage: { kind: 'memory' } }));
    const config = loadConfig({ configPath: path });
    expect(config.server).toMatchObject({ ...DEFAULTS.server, port: 1234 });
    expect(config.storage.kind).toBe('memory');
    expect(config.limits).toMatchObject(DEFAULTS.limits);
  });

  test('flags override the file', async () => {
    const path = await file('c.json', JSON.stringify({ server: { host: '0.0.0.0', port: 1234, maxConnections: 3 }, storage: { kind: 'memory', root: '/srv/a' } }));
    const config = loadConfig({ configPath: path, overrides: { host: '::1', port: 0, root: '/srv/b' } });
    expect(config.server).toMatchObject({ host: '::1', port: 0, maxConnections: 3 });
    // --root means a local folder, whatever the file said.
    expect(config.storage).toMatchObject({ kind: 'local', root: '/srv/b', partialExpiryMs: 86_400_000 });
  });

  test('flags override the defaults without a file', () => {
    expect(loadConfig({ overrides: { port: 4321 } }).server.port).toBe(4321);
  });

  test('flags are validated like the file', () => {
    expect(configError(() => loadConfig({ overrides: { port: 99_999 } })).message).toContain('server.port');
  });

  test('a wrong type in the file: CONFIG_INVALID naming the file and the key', async () => {
    const path = await file('bad.json', JSON.stringify({ server: { port: '9000' } }));
    const message = configError(() => loadConfig({ configPath: path })).message;
    expect(message).toContain(path);
    expect(message).toContain('server.port');
  });

  test('an unknown key in the file: CONFIG_INVALID naming it', async () => {
    const path = await file('typo.json', JSON.stringify({ limits: { maxLinebytes: 100 } }));
    const message = configError(() => loadConfig({ configPath: path })).message;
    expect(message).toContain('limits');
    expect(message).toContain('maxLinebytes');
  });

  test('invalid JSON: CONFIG_INVALID naming the file', async () => {
    const path = await file('broken.json', '{ "server": { "port": 9000, } ');
    const message = configError(() => loadConfig({ configPath: path })).message;
    expect(message).toContain(path);
    expect(message).toMatch(/JSON/);
  });

  test.each([
    ['an array', '[]'],
    ['null', 'null'],
    ['a number', '42'],
  ])('a file whose top level is %s: CONFIG_INVALID', async (_label, text) => {
    const path = await file('odd.json', text);
    expect(configError(() => loadConfig({ configPath: path })).message).toContain(path);
  });

  test('a missing file: CONFIG_INVALID naming the file and why', () => {
    const path = join(dir, 'nope.json');
    const message = configError(() => loadConfig({ configPath: path })).message;
    expect(message).toContain(path);
    expect(message).toContain('ENOENT');
  });

  test('a folder given as the file: CONFIG_INVALID', () => {
    expect(configError(() => loadConfig({ configPath: dir })).message).toContain(dir);
  });
});
