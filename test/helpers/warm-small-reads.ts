import { RawClient, downloadRequest, uploadRequest } from './raw-client';

/** Downloads in the burst: above SmallReads' BURST_FILES, so that the worker starts whatever its value. */
const BURST = 96;

/**
 * Starts a server's small-read worker as users do, with a burst of small downloads (of a file it
 * uploads first, `name`, and deletes after), and gives the thread time to come up. Once started the worker lives for
 * minutes (src/storage/small-reads.ts), like the small-commit worker: a test that counts the server's
 * descriptors takes its baseline after this, or a thread started by its own workload counts as a leak.
 */
export const warmSmallReads = async (port: number, name = 'warm-small-reads.txt'): Promise<void> => {
  const client = await RawClient.connect(port);
  try {
    await client.send(uploadRequest(name, 'warm'));
    const replies = [await client.readLine(), await client.readLine()];
    if (!replies[1]!.startsWith('OK file data recv')) throw new Error(`warm-up upload refused: ${replies.join(' / ')}`);
    await client.send(Buffer.concat(Array.from({ length: BURST }, () => downloadRequest(name))));
    for (let i = 0; i < BURST; i++) {
      const line = await client.readLine();
      if (!line.startsWith('OK 4 ')) throw new Error(`warm-up download refused: ${line}`);
      await client.readBytes(4);
    }
    // Gone again: the test's own view of the storage stays its own.
    await client.send(`DELETE\n${name}\n`);
    const deleted = await client.readLine();
    if (deleted !== 'OK deleted') throw new Error(`warm-up file not deleted: ${deleted}`);
  } finally {
    client.destroy();
  }
  // The thread's start (≈ 20–40 ms): its descriptors are open once it is up.
  await new Promise((resolve) => setTimeout(resolve, 500));
};
