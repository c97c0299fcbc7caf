import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, symlink, unlink } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { RawClient, destroyAll, sha256, uploadRequest } from '../helpers/raw-client';
import { type TestServer, startTestServer, userFiles } from '../helpers/server';

/**
 * Promise (README, "The client distrusts …" / PROTOCOL.md error table): an error names what went wrong.
 * When one of the server's own folders under `<root>/.rxfer` (the staging area, kept uploads, digest
 * records) is swapped for a link by someone with access to the storage, nothing is made outside the
 * root (hostile passes j and p) — and the client must not be told its *name* "resolves outside the
 * storage root" (NAME_INVALID, which says: pick another name): its name is fine, the server's storage
 * is not usable. The reply is STORAGE_FAILED, naming the server's folder, and a retry once the folder
 * is back works.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

describe("one of the server's own folders swapped for a link: STORAGE_FAILED about the server, not NAME_INVALID about the name", () => {
  let server: TestServer;
  const clients: RawClient[] = [];
  const restores: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    server = await startTestServer();
  });
  afterEach(async () => {
    destroyAll(clients);
    for (const restore of restores.splice(0).reverse()) await restore();
    await server.close();
  });

  /** `.rxfer/<folder>` moved aside and replaced by a link to an empty folder outside the root (put back after the test). */
  const swap = async (folder: string): Promise<string> => {
    const root = realpathSync(server.root);
    const outside = join(realpathSync(server.scratch), `trap-${folder}`);
    await mkdir(outside);
    const own = join(root, '.rxfer', folder);
    await rename(own, `${own}-real`);
    await symlink(outside, own);
    restores.push(async () => {
      await unlink(own);
      await rename(`${own}-real`, own);
    });
    return outside;
  };

  test.each([
    ['small (the commit worker)', 'staging', 4 * KiB],
    ['mid-sized (streamed, committed on the main thread)', 'staging', 200 * KiB],
    ['large (a kept upload)', 'partials', 1.5 * MiB],
  ])('%s upload with .rxfer/%s a link', async (_label, folder, size) => {
    const outside = await swap(folder);
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(uploadRequest('docs/a.bin', randomBytes(size)));
    const outcome = await client.readUploadOutcome();
    expect(outcome).toBe(`ERR STORAGE_FAILED cannot store docs/a.bin: the server's own folder .rxfer/${folder} cannot be used (it, or a folder above it, is a symbolic link now: ELOOP); nothing stored`);
    expect(await readdir(outside)).toEqual([]);
    expect(await userFiles(server.root)).toEqual([]);
    // The folder put back, the same upload on the same connection is stored.
    for (const restore of restores.splice(0)) await restore();
    const data = randomBytes(size);
    await client.send(uploadRequest('docs/a.bin', data));
    expect(await client.readUploadOutcome()).toBe(`OK file data recv ${size} ${sha256(data)}`);
    expect(await userFiles(server.root)).toEqual(['docs/a.bin']);
  });

  test.each([
    ['small', 4 * KiB],
    ['mid-sized', 200 * KiB],
  ])('the staging folder removed after the start: a %s upload is STORAGE_FAILED about that folder', async (_label, size) => {
    const staging = join(realpathSync(server.root), '.rxfer', 'staging');
    await rename(staging, `${staging}-away`);
    restores.push(() => rename(`${staging}-away`, staging));
    const client = await RawClient.connect(server.port);
    clients.push(client);
    await client.send(uploadRequest('a.bin', randomBytes(size)));
    expect(await client.readUploadOutcome()).toBe("ERR STORAGE_FAILED cannot store a.bin: the server's own folder .rxfer/staging cannot be used (ENOENT (no such file or directory)); nothing stored");
    expect(await userFiles(server.root)).toEqual([]);
  });
});
