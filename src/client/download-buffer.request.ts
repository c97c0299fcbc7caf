import type { TransferResult } from './client-options';
import type { Connection } from './connection';
import type { RequestTurn } from './request-lanes';
import { receiveDownload, verifyDownload } from './download-file.request';

/** DOWNLOAD into memory, verified like a file download. Meant for small files and tests. */
export const downloadBuffer = async (
  conn: Connection,
  turn: RequestTurn,
  remoteName: string,
): Promise<TransferResult & { data: Buffer }> => {
  const chunks: Buffer[] = [];
  const sink = { keep: (chunk: Buffer) => void chunks.push(chunk) };
  const { announced, received } = await receiveDownload(conn, turn, remoteName, { openSink: async () => sink });
  verifyDownload(remoteName, announced, received);
  return { data: Buffer.concat(chunks, received.size), ...received };
};
