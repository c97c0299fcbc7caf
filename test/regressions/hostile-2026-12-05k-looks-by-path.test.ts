import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RawClient, uploadRequest } from '../helpers/raw-client';
import { diffSnapshots, makeUser, snapshot } from '../security/support/server';
import { linkAttackHarness, readReply, swapForLink } from './support/link-attack';

/**
 * The looks that still went by path after the opened-folder fixes of hostile passes i and j (the
 * eighteenth session's review of what they left): an ADDFILE's or a large upload's look at its name
 * before any data (EXISTS, NAME_CONFLICT), and a quota's size of the file an upload replaces. The
 * server checks a name's folder with realpath and remembers the check for a second; someone who can
 * write in the storage swaps the folder for a link to outside the root within that second. By path,
 * each look then saw what lies outside, and its answer told the client: whether a name exists out
 * there (ADDFILE: EXISTS), whether it is a folder (a large upload: NAME_CONFLICT), how large a file
 * is (an upload over quota accepted, because the "file it replaces" outside was larger). Each is
 * now looked at inside the checked folder, opened and shown to be that folder (opened-paths.ts):
 * every name under a swapped folder gets the same refusal, whatever lies outside.
 *
 * The swap is made between two requests (the first caches the folder's check), so these need no race.
 */

const SWAPPED_REFUSAL = /^ERR NAME_INVALID \S/;

describe('hostile 2026-12-05 (k): looks at a name that went by path, under a folder swapped for a link after its check', () => {
  const { serve, connect } = linkAttackHarness();

  /** An upload of `d/first` (which checks `folder` and remembers the check), answered OK. */
  const checkFolder = async (client: RawClient, name: string): Promise<void> => {
    await client.send(uploadRequest(name, 'first'));
    expect(await client.readLines(2)).toEqual(['OK file recv', expect.stringMatching(/^OK file data recv 5 /)]);
  };
  /** Both replies of an upload whose whole request was sent, as one line (readReply). */
  const outcome = (client: RawClient): Promise<string> => readReply(client, { kind: 'upload', bytes: Buffer.alloc(0) });

  test('ADDFILE under a swapped folder: the same refusal for a name that exists outside the root and for one that does not (no EXISTS oracle), and nothing outside changes', async () => {
    const server = await serve();
    await mkdir(join(server.realRoot, 'd'));
    await writeFile(join(server.sentinel, 'only-outside.txt'), 'outside');
    const before = await snapshot(server.sentinel);
    const client = await connect(server.port);
    await checkFolder(client, 'd/first');
    await swapForLink(join(server.realRoot, 'd'), server.sentinel);

    // One request each on the same connection, well within the second the folder's check is kept.
    await client.send(Buffer.concat([uploadRequest('d/secret.txt', 'probe', { verb: 'ADDFILE' }), uploadRequest('d/no-such-file.txt', 'probe', { verb: 'ADDFILE' })]));
    const [existing, missing] = [await outcome(client), await outcome(client)];
    // By path: "ERR EXISTS d/secret.txt already exists" against "OK file recv": the sentinel's names, one probe each.
    expect(existing).not.toMatch(/EXISTS/);
    expect(existing).toMatch(SWAPPED_REFUSAL);
    expect(missing).toMatch(SWAPPED_REFUSAL);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
    // The server serves on: the real folder, put back, takes uploads again.
    await rename(join(server.realRoot, 'd'), join(server.realRoot, 'd.link'));
    await rename(join(server.realRoot, 'd.parked'), join(server.realRoot, 'd'));
    await client.send(uploadRequest('d/after.txt', 'after', { verb: 'ADDFILE' }));
    expect(await client.readUploadOutcome()).toMatch(/^OK file data recv 5 /);
    expect(await readFile(join(server.realRoot, 'd', 'after.txt'), 'utf8')).toBe('after');
  });

  test('a large upload (≥ 1 MiB, looked at before its data) under a swapped folder: no NAME_CONFLICT that tells a folder outside from a file or from nothing', async () => {
    const server = await serve();
    await mkdir(join(server.realRoot, 'd'));
    await mkdir(join(server.sentinel, 'a-folder'));
    const before = await snapshot(server.sentinel);
    const client = await connect(server.port);
    await checkFolder(client, 'd/first');
    await swapForLink(join(server.realRoot, 'd'), server.sentinel);

    const body = randomBytes(1024 * 1024);
    const outcomes: string[] = [];
    for (const name of ['d/a-folder', 'd/secret.txt', 'd/nothing-there']) {
      await client.send(uploadRequest(name, body));
      outcomes.push(await outcome(client));
    }
    // By path: NAME_CONFLICT for the folder outside, and an accepted header for the others.
    expect(outcomes).toEqual([expect.stringMatching(SWAPPED_REFUSAL), expect.stringMatching(SWAPPED_REFUSAL), expect.stringMatching(SWAPPED_REFUSAL)]);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });

  test("a quota user's upload over a file outside the root, reached through a swapped folder: refused at its header; its size outside never makes room", async () => {
    const alice = await makeUser('alice', 'write', 'alice', 64 * 1024);
    const server = await serve([alice]);
    await mkdir(join(server.realRoot, 'alice', 'd'), { recursive: true });
    await writeFile(join(server.sentinel, 'big.bin'), randomBytes(1024 * 1024));
    const before = await snapshot(server.sentinel);
    const client = await connect(server.port, alice.token);
    await checkFolder(client, 'd/first');
    await swapForLink(join(server.realRoot, 'alice', 'd'), server.sentinel);

    // 200,000 bytes do not fit in alice's 64 KiB; by path the quota counted the 1 MiB file outside as
    // the one being replaced (a growth below zero), and the header was accepted: a size oracle.
    const body = randomBytes(200_000);
    await client.send(uploadRequest('d/big.bin', body));
    expect(await outcome(client)).toMatch(SWAPPED_REFUSAL);
    expect(diffSnapshots(before, await snapshot(server.sentinel))).toEqual([]);
  });
});
