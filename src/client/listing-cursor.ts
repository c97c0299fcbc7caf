import { RxferError } from '../errors/rxfer-error';
import type { ListingEntry } from '../protocol/listing';
import type { ListingPage } from './list.request';
import { compareSegments } from './name-order';

/**
 * The server's listing read alongside a walk in the same order of names (a merge join): `find`
 * answers from the page in hand and moves to the next page only once the names asked for have gone
 * past this one's last. At most two pages held, the one in hand and the one asked for ahead, never
 * the whole listing (issue 17: the Map of a 200,000-file re-run was most of its 298 MiB). Asked in
 * the order local storage pages in (segment by segment); a server that pages in another (S3: UTF-8
 * bytes) may have left a file on the page before by then, and that file is sent again: never a file
 * skipped that differs.
 *
 * Pages are asked for ahead of their turn, so that the server lstats and formats one while this side
 * walks and lstats its own files: a page asked for only when the walk reached it left each side idle
 * while the other worked (issue 20: an identical re-run of 20,000 files was start-up, then the walk,
 * then the server's whole listing, then the client's comparisons, one after the other). The first
 * page is asked for at `start`; each next one once the walk has found half of the page in hand,
 * so that a small tree put into a big folder does not have pages built that it never reads.
 */
export class ListingCursor {
  private page = new Map<string, ListingEntry>();
  private last: string | undefined;
  private more = true;
  /** The next page, asked for and not yet taken. */
  private ahead: Promise<IteratorResult<ListingPage>> | undefined;
  /** Names of the page in hand still to be found before the next page is asked for ahead. */
  private untilAhead = 0;

  /** `pages`: the listing's pages; a folder that is not there (NOT_FOUND) lists nothing. */
  constructor(private readonly pages: AsyncIterator<ListingPage>) {}

  /** Asks for the first page now, before the first `find`. */
  start(): this {
    if (this.ahead === undefined && this.last === undefined) this.askAhead();
    return this;
  }

  /** The server's entry for `name`, if it has one; names must be asked for in walk order. */
  async find(name: string): Promise<ListingEntry | undefined> {
    while (this.more && (this.last === undefined || compareSegments(name, this.last) > 0)) await this.next();
    const entry = this.page.get(name);
    // Reaches 0 once a page, after next() took the page asked for ahead: nothing else is on its way then.
    if (entry !== undefined && --this.untilAhead === 0 && this.more) this.askAhead();
    return entry;
  }

  private askAhead(): void {
    const read = this.pages.next();
    // Taken (and its failure reported) by next(); a cursor given up before then must not leave a
    // rejection nobody handles, which would end the process.
    read.catch(() => undefined);
    this.ahead = read;
  }

  private async next(): Promise<void> {
    const first = this.last === undefined;
    if (this.ahead === undefined) this.askAhead();
    const ahead = this.ahead!;
    this.ahead = undefined;
    const read = await ahead.catch((err: unknown) => {
      if (first && err instanceof RxferError && err.code === 'NOT_FOUND') return { done: true as const, value: undefined };
      throw err;
    });
    if (read.done) {
      this.page = new Map();
      this.more = false;
      return;
    }
    const { entries, more } = read.value;
    this.page = new Map(entries.map((entry) => [entry.name, entry]));
    this.more = more;
    this.last = entries.length > 0 ? entries[entries.length - 1]!.name : (this.last ?? '');
    this.untilAhead = Math.ceil(entries.length / 2);
  }
}
