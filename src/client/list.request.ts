import { RxferError } from '../errors/rxfer-error';
import { ListingEntry, listingCursor, parseListing } from '../protocol/listing';
import type { Connection } from './connection';
import { wireName } from './request-header';
import { replyError } from './expect-reply';
import type { RequestTurn } from './request-lanes';
import { compareBytes, compareSegments } from './name-order';

/** The orders a paged listing may follow (see name-order.ts). */
const LISTING_ORDERS = [compareSegments, compareBytes];

/** One LIST answer: its entries, and whether a page with more after it (paged requests only). */
export interface ListingPage {
  readonly entries: ListingEntry[];
  readonly more: boolean;
}

/**
 * What to list besides files under the folder: `folders`, a line for each folder (LIST FOLDERS:
 * empty ones too, issue 19); `shallow`, only the folder's own entries (LIST SHALLOW: `ls`, issue 17).
 * Only for a server whose greeting has `list-options` with them.
 */
export interface ListShape {
  readonly folders?: boolean;
  readonly shallow?: boolean;
}

/**
 * LIST of `prefix` ('' for all): the whole listing, or with `page` one page of it (LIST PAGED, or
 * LIST AFTER the cursor of the page's last entry: `listingCursor`). Names are the server's, not yet trusted.
 */
export const listPage = async (conn: Connection, turn: RequestTurn, prefix: string, page?: { readonly after?: string }, shape: ListShape = {}): Promise<ListingPage> => {
  const folder = prefix.replace(/\/+$/, '');
  const line = folder === '' ? '' : wireName(folder);
  const words = `${shape.folders ? ' FOLDERS' : ''}${shape.shallow ? ' SHALLOW' : ''}`;
  // A folder cursor keeps its slash (wireName would see an empty last segment).
  const cursor = page?.after === undefined ? '' : page.after.endsWith('/') ? `${wireName(page.after.slice(0, -1))}/` : wireName(page.after);
  const request = page === undefined ? `LIST${words}\n${line}\n` : page.after === undefined ? `LIST PAGED${words}\n${line}\n` : `LIST AFTER${words}\n${line}\n${cursor}\n`;
  await conn.send(request).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
  turn.doneSending();
  await turn.receiveTurn;
  const reply = await conn.readReply();
  if (reply.kind !== 'listing') throw replyError(conn, reply, 'LIST');
  const chunks: Buffer[] = [];
  try {
    await conn.readBodyInMemory(reply.bytes, (chunk) => chunks.push(chunk));
  } catch (err) {
    conn.abandon(err instanceof RxferError ? err : undefined);
    throw err;
  }
  const entries = parseListing(Buffer.concat(chunks, reply.bytes), { folders: shape.folders === true });
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
 * holds one page at a time, and no folder is too large: issue 17), yielded as it comes: a caller
 * that is done with a page before it asks for the next holds one page at a time too. A server must
 * move forward: a page that does not end after the name it was asked after (in one of the two listing
 * orders, the same for every page) is a protocol violation, not a loop.
 */
export async function* listingPages(ask: (after: string | undefined) => Promise<ListingPage>): AsyncGenerator<ListingPage> {
  let after: string | undefined;
  // The orders this listing has kept to so far: each page must end after the name it was asked
  // after, in the same one of them, so the cursor only moves forward and no page comes round again.
  // (What each name is worth is the caller's to judge: get -r refuses a hostile one by its rules.)
  let orders = LISTING_ORDERS;
  for (;;) {
    const page = await ask(after);
    const { entries, more } = page;
    if (after !== undefined && entries.length > 0) {
      const from = after;
      const last = listingCursor(entries[entries.length - 1]!);
      orders = orders.filter((compare) => compare(last, from) > 0);
      if (orders.length === 0) {
        throw new RxferError('PROTOCOL_VIOLATION', `LIST AFTER ${JSON.stringify(from.slice(0, 200))} answered with names that do not come after it`);
      }
    }
    yield page;
    if (!more) return;
    after = listingCursor(entries[entries.length - 1]!);
  }
}

/** Every page of a paged LIST, collected (see listingPages). */
export const listInPages = async (ask: (after: string | undefined) => Promise<ListingPage>): Promise<ListingEntry[]> => {
  const all: ListingEntry[] = [];
  for await (const { entries } of listingPages(ask)) for (const entry of entries) all.push(entry);
  return all;
};

/**
 * What a server without `list-options` gives for a shaped listing, from its recursive file listing:
 * with `shallow`, the files directly in `folder`; with `folders`, the folders that hold files (an
 * empty one cannot be known from files).
 */
export const shapeFileListing = (folder: string, files: readonly ListingEntry[], shape: ListShape): ListingEntry[] => {
  const base = folder === '' ? '' : `${folder.replace(/\/+$/, '')}/`;
  const out: ListingEntry[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const segments = file.name.slice(base.length).split('/');
    if (shape.folders) {
      const upTo = shape.shallow ? Math.min(1, segments.length - 1) : segments.length - 1;
      for (let i = 1; i <= upTo; i++) {
        const name = base + segments.slice(0, i).join('/');
        if (!seen.has(name)) out.push({ name, size: 0, mtimeMs: 0, folder: true });
        seen.add(name);
      }
    }
    if (!shape.shallow || segments.length === 1) out.push(file);
  }
  return out;
};
