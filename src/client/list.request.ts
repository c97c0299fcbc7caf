import { Writable } from 'node:stream';
import { RxferError } from '../errors/rxfer-error';
import { ListingEntry, parseListing } from '../protocol/listing';
import type { Connection } from './connection';
import { wireName } from './request-header';
import { replyError } from './expect-reply';
import type { RequestTurn } from './request-lanes';

/** One LIST answer: its entries, and whether a page with more after it (paged requests only). */
export interface ListingPage {
  readonly entries: ListingEntry[];
  readonly more: boolean;
}

/**
 * LIST of `prefix` ('' for all): the whole listing, or with `page` one page of it (LIST PAGED, or
 * LIST AFTER the last name of the page before). Names are the server's, not yet trusted.
 */
export const listPage = async (conn: Connection, turn: RequestTurn, prefix: string, page?: { readonly after?: string }): Promise<ListingPage> => {
  const folder = prefix.replace(/\/+$/, '');
  const line = folder === '' ? '' : wireName(folder);
  const request = page === undefined ? `LIST\n${line}\n` : page.after === undefined ? `LIST PAGED\n${line}\n` : `LIST AFTER\n${line}\n${wireName(page.after)}\n`;
  await conn.send(request).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
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
  const more = reply.more === true;
  if (more && (page === undefined || entries.length === 0)) throw new RxferError('PROTOCOL_VIOLATION', 'LIST announced more entries without a page to continue from');
  return { entries, more };
};

/** LIST: the files under `prefix` ('' for all), as the server reports them (names not yet trusted). */
export const listFiles = async (conn: Connection, turn: RequestTurn, prefix: string): Promise<ListingEntry[]> => (await listPage(conn, turn, prefix)).entries;

/**
 * Every page of a paged LIST, each asked for after the last name of the one before (the server
 * holds one page at a time, and no folder is too large: issue 17). A server must move forward: a
 * page that does not start after the last name seen is a protocol violation, not a loop.
 */
export const listInPages = async (ask: (after: string | undefined) => Promise<ListingPage>): Promise<ListingEntry[]> => {
  const all: ListingEntry[] = [];
  let after: string | undefined;
  for (;;) {
    const { entries, more } = await ask(after);
    if (after !== undefined && entries.length > 0 && entries[0]!.name === after) {
      throw new RxferError('PROTOCOL_VIOLATION', `LIST AFTER ${JSON.stringify(after.slice(0, 200))} repeated that name`);
    }
    for (const entry of entries) all.push(entry);
    if (!more) return all;
    after = entries[entries.length - 1]!.name;
  }
};
