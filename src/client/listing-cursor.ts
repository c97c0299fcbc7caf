import { RxferError } from '../errors/rxfer-error';
import type { ListingEntry } from '../protocol/listing';
import type { ListingPage } from './list.request';
import { compareSegments } from './name-order';

/**
 * The server's listing read alongside a walk in the same order of names (a merge join): `find`
 * answers from the page in hand and asks for the next page only once the names asked for have
 * gone past this one's last. One page held at a time, never the whole listing (issue 17: the Map
 * of a 200,000-file re-run was most of its 298 MiB). Asked in the order local storage pages in
 * (segment by segment); a server that pages in another (S3: UTF-8 bytes) may have left a file on
 * the page before by then, and that file is sent again: never a file skipped that differs.
 */
export class ListingCursor {
  private page = new Map<string, ListingEntry>();
  private last: string | undefined;
  private more = true;

  /** `pages`: the listing's pages; a folder that is not there (NOT_FOUND) lists nothing. */
  constructor(private readonly pages: AsyncIterator<ListingPage>) {}

  /** The server's entry for `name`, if it has one; names must be asked for in walk order. */
  async find(name: string): Promise<ListingEntry | undefined> {
    while (this.more && (this.last === undefined || compareSegments(name, this.last) > 0)) await this.next();
    return this.page.get(name);
  }

  private async next(): Promise<void> {
    const first = this.last === undefined;
    const read = await this.pages.next().catch((err: unknown) => {
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
  }
}
