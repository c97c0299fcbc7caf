import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load-config';

/**
 * Promise (README, Configuration): the table there gives the default of every config key. This
 * reads that table and checks each row against what `parseConfig({})` really gives, and that every
 * key the parsed default config has is in the table. A default changed in the schema without the
 * README (or the other way round) fails here.
 */
interface Row {
  readonly key: string;
  readonly documented: string;
}

const readmeRows = (): Row[] => {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const start = readme.indexOf('| key | default | meaning |');
  expect(start).toBeGreaterThanOrEqual(0);
  const rows: Row[] = [];
  for (const line of readme.slice(start).split('\n').slice(2)) {
    const match = /^\| `([a-zA-Z0-9.]+)` \| (.+?) \| /.exec(line);
    if (!match) break;
    rows.push({ key: match[1], documented: match[2] });
  }
  return rows;
};

const at = (config: unknown, key: string): unknown => key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], config);

/** The value a README cell means: `9000` → 9000, `""` → '', unset → undefined (a note after it is ignored). */
const meaning = (cell: string): unknown => {
  if (cell === 'unset') return undefined;
  const code = /^`([^`]*)`/.exec(cell)?.[1];
  if (code === undefined) throw new Error(`cannot read the default ${cell}`);
  try {
    return JSON.parse(code);
  } catch {
    return code;
  }
};

/** Leaf keys of the parsed config (arrays and unset optional objects count as leaves). */
const leaves = (node: unknown, prefix = ''): string[] =>
  node !== null && typeof node === 'object' && !Array.isArray(node)
    ? Object.entries(node).flatMap(([key, value]) => leaves(value, prefix ? `${prefix}.${key}` : key))
    : [prefix];

describe("the README's table of config defaults is what the server uses", () => {
  const rows = readmeRows();
  const defaults = parseConfig({});

  test('the table is there and has every key of the parsed defaults', () => {
    expect(rows.length).toBeGreaterThan(20);
    const documented = new Set(rows.map((row) => row.key));
    expect(leaves(defaults).filter((key) => !documented.has(key))).toEqual([]);
  });

  test.each(readmeRows().filter((row) => row.key !== 'auth.anonymous'))('$key: $documented', ({ key, documented }) => {
    expect(at(defaults, key)).toEqual(meaning(documented));
  });

  test('auth.anonymous: `write` without users, `none` with', () => {
    expect(defaults.auth.anonymous).toBe('write');
    const withUsers = parseConfig({ auth: { users: [{ name: 'alice', tokenHash: 'scrypt$16384$8$1$AAAA$AAAA', root: 'alice' }] } });
    expect(withUsers.auth.anonymous).toBe('none');
  });
});
