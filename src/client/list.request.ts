import { Writable } from 'node:stream';
import { RxferError } from '../errors/rxfer-error';
import { ListingEntry, parseListing } from '../protocol/listing';
import type { Connection } from './connection';
import { wireName } from './request-header';
import { replyError } from './expect-reply';
import type { RequestTurn } from './request-lanes';

/** LIST: the files under `prefix` ('' for all), as the server reports them (names not yet trusted). */
export const listFiles = async (conn: Connection, turn: RequestTurn, prefix: string): Promise<ListingEntry[]> => {
  const folder = prefix.replace(/\/+$/, '');
  const line = folder === '' ? '' : wireName(folder);
  await conn.send(`LIST\n${line}\n`).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
  turn.doneSending();
  await turn.receiveTurn;
  const reply = await conn.readReply();
  if (reply.kind !== 'listing') throw replyError(conn, reply, 'LIST');
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  try {
    await conn.readBody(reply.bytes, sink, {});
  } catch (err) {
    conn.abandon(err instanceof RxferError ? err : undefined);
    throw err;
  }
  const entries = parseListing(Buffer.concat(chunks, reply.bytes));
  if (entries.length !== reply.count) {
    throw new RxferError('PROTOCOL_VIOLATION', `LIST announced ${reply.count} entries but sent ${entries.length}`);
  }
  return entries;
};
