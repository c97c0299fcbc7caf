import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RxferClient } from '../../src/client/rxfer-client';
import { startTestServer, type TestServer } from '../helpers/server';

/**
 * Hostile test of paged LIST of a big folder (sorted-folders.ts keeps its sorted entries between
 * pages; each page starts at its cursor by binary search) while another client uploads, deletes and
 * renames files in it. Over each whole listing: names strictly in order (so none twice), every name
 * that was there from before the listing to after it is listed, and no name is listed that never
 * existed. Pages are small (200) so that a listing takes many pages. (Held when written.)
 */
const BIG = 4500; // past the 4096 entries from which a folder's sorted entries are kept
const kept = (i: number): boolean => i % 3 === 0; // never touched by the churn

describe('pages of a big folder while another client changes it', () => {
  let server: TestServer;
  let lister: RxferClient;
  let churner: RxferClient;

  beforeAll(async () => {
    server = await startTestServer({ config: { limits: { maxListEntries: 200 } } });
    mkdirSync(join(server.root, 'big'));
    for (let i = 0; i < BIG; i++) writeFileSync(join(server.root, 'big', `f-${String(i).padStart(5, '0')}`), 'x');
    lister = await RxferClient.connect({ host: server.host, port: server.port });
    churner = await RxferClient.connect({ host: server.host, port: server.port });
  });
  afterAll(async () => {
    lister?.close();
    churner?.close();
    await server?.close();
  });

  test('no name twice, none out of order, none that never was, none missing that stayed', async () => {
    const everExisted = new Set(Array.from({ length: BIG }, (_, i) => `big/f-${String(i).padStart(5, '0')}`));
    let stop = false;
    const churn = (async () => {
      for (let i = 1; !stop && i < BIG; i++) {
        if (kept(i)) continue;
        const from = `big/f-${String(i).padStart(5, '0')}`;
        if (i % 3 === 1) {
          everExisted.add(`big/q-${i}`);
          await churner.rename(from, `big/q-${i}`);
        } else await churner.remove(from);
        // New names land all over the order: before, among and after the listed ones.
        for (const added of [`big/a-${i}`, `big/f-${String(i).padStart(5, '0')}-new`, `big/z-${i}`]) {
          everExisted.add(added);
          await churner.uploadBuffer(added, Buffer.from(added));
        }
      }
    })();
    let listings = 0;
    try {
      for (; listings < 4; listings++) {
        const listed: string[] = [];
        for await (const page of lister.listPages('big')) for (const entry of page.entries) listed.push(entry.name);
        for (let at = 1; at < listed.length; at++) expect([listed[at - 1]! < listed[at]!, listed[at - 1], listed[at]]).toEqual([true, listed[at - 1], listed[at]]);
        for (const name of listed) expect(everExisted.has(name) ? name : `${name} never existed`).toBe(name);
        const seen = new Set(listed);
        for (let i = 0; i < BIG; i++) if (kept(i)) expect(seen.has(`big/f-${String(i).padStart(5, '0')}`) ? i : `f-${i} missing`).toBe(i);
      }
    } finally {
      stop = true;
      await churn;
    }
    expect(listings).toBe(4);
  }, 60_000);
});
