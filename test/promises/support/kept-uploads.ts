import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RawClient } from '../../helpers/raw-client';
import { eventually } from '../../helpers/server';

/** The data files of kept partial uploads under a local storage `root`. */
export const keptUploads = async (root: string): Promise<string[]> =>
  (await readdir(join(root, '.rxfer', 'partials')).catch(() => [] as string[])).filter((name) => !name.endsWith('.json'));

/** Bytes in the one kept upload under `root` (undefined: none). */
export const keptBytes = async (root: string): Promise<number | undefined> => {
  const [kept] = await keptUploads(root);
  return kept === undefined ? undefined : (await stat(join(root, '.rxfer', 'partials', kept)).catch(() => undefined))?.size;
};

/**
 * Sends the header and the first `sent` bytes of an UPLOAD of `total` bytes, waits until all of them
 * reached the kept file, then cuts the connection and waits until RESUME sees them (released).
 * `root` is the storage root the kept file lands in; `prefix` is what the server calls the name
 * (the user's root before it), for RESUME's reply.
 */
export const interruptUpload = async (port: number, root: string, name: string, data: Buffer, total: number, preamble: string[] = []): Promise<void> => {
  const client = await RawClient.connect(port);
  try {
    for (const line of preamble) {
      await client.send(`${line}\n`);
      await client.readLine();
    }
    await client.send(`UPLOAD ${total}\n${name}\n`);
    const reply = await client.readLine();
    if (reply !== 'OK file recv') throw new Error(`upload of ${name} refused: ${reply}`);
    await client.send(data);
    await eventually(async () => (await keptBytes(root)) === data.length, 10_000, `${data.length} bytes kept`);
  } finally {
    client.destroy();
  }
};

/** RESUME's reply for `name` on a fresh connection (after `preamble` lines such as AUTH). */
export const resumeReply = async (port: number, name: string, preamble: string[] = []): Promise<string> => {
  const client = await RawClient.connect(port);
  try {
    for (const line of preamble) {
      await client.send(`${line}\n`);
      await client.readLine();
    }
    await client.send(`RESUME\n${name}\n`);
    return await client.readLine();
  } finally {
    client.destroy();
  }
};

/** Waits until the interrupted upload of `name` is released (RESUME answers with what is kept). */
export const waitReleased = (port: number, name: string, preamble: string[] = []): Promise<void> =>
  eventually(async () => (await resumeReply(port, name, preamble)).startsWith('OK partial'), 10_000, `${name} released`);
