import { resolve } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import type { ListingEntry } from '../protocol/listing';
import { printableName } from '../protocol/remote-name';
import { localPathFor } from './local-target';
import { compareBytes, compareSegments } from './name-order';

/**
 * What `get -r` checks of a server's listing before it writes anything, one page at a time, holding
 * O(page) and never the whole listing (issue 17: 200,000 names were ≈ 300 MiB of client). What
 * the check needs:
 * - each name on its own (`localPathFor`): valid, under the folder asked for, inside the target. That
 *   is the promise that matters: nothing lands outside the target, whatever the server says.
 * - no two entries for one local file, and no name both a file and a folder (`a` and `a/b`: they
 *   cannot both be made here). Within a page a set of its names finds them in any order. Across
 *   pages the order does: a paged listing follows one order of names (PROTOCOL.md, LIST), so a
 *   name listed again would break it. rxfer's storages page in one of two (name-order.ts); a
 *   listing of several pages that follows neither is refused.
 *   In both, every name below `a/` comes right after `a` or after names that start with `a`, so
 *   the files that may still have names below them are a chain of prefixes (`open`), O(depth).
 * Not checked, as before: names that differ only in case, which a case-insensitive local file
 * system would make one file (the later one replaces the earlier; both inside the target).
 */
export class ListedNameCheck {
  private previous: string | undefined;
  /** The first name listed out of both orders (the one an order error names). */
  private outOfOrder: string | undefined;
  private segmentOrder = true;
  private byteOrder = true;
  private pages = 0;
  /** Files listed so far that a later name may still lie below (each a prefix of the next). */
  private readonly open: string[] = [];
  /** The target folder resolved once, not once per name (see localPathFor). */
  private readonly root: string;

  constructor(
    private readonly localDir: string,
    private readonly remoteFolder: string,
  ) {
    this.root = resolve(localDir);
  }

  /** The local path of each entry of the next page; NAME_INVALID or PROTOCOL_VIOLATION at the first that fails. */
  page({ entries, more }: { readonly entries: readonly ListingEntry[]; readonly more: boolean }): string[] {
    this.pages++;
    const names = new Set<string>();
    const targets = entries.map((entry) => {
      const target = localPathFor(this.localDir, this.remoteFolder, entry.name, this.root);
      if (names.has(entry.name)) throw new RxferError('PROTOCOL_VIOLATION', `the server listed ${printableName(entry.name)} twice`);
      names.add(entry.name);
      this.follow(entry.name);
      return target;
    });
    for (const name of names) {
      for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) {
        if (names.has(name.slice(0, slash))) throw bothFileAndFolder(name.slice(0, slash), name);
      }
    }
    if ((more || this.pages > 1) && !this.segmentOrder && !this.byteOrder) {
      throw new RxferError('PROTOCOL_VIOLATION', `the server listed ${printableName(this.outOfOrder ?? '')} out of its order (or twice): a paged listing must follow one order of names`);
    }
    return targets;
  }

  private follow(name: string): void {
    if (this.previous !== undefined) {
      this.segmentOrder &&= compareSegments(this.previous, name) < 0;
      this.byteOrder &&= compareBytes(this.previous, name) < 0;
      if (!this.segmentOrder && !this.byteOrder) this.outOfOrder ??= name;
    }
    this.previous = name;
    while (this.open.length > 0 && !name.startsWith(this.open[this.open.length - 1]!)) this.open.pop();
    const file = this.open.find((prefix) => name.startsWith(`${prefix}/`));
    if (file !== undefined) throw bothFileAndFolder(file, name);
    this.open.push(name);
  }
}

const bothFileAndFolder = (file: string, below: string): RxferError =>
  new RxferError('NAME_INVALID', `the server listed ${printableName(file)} as a file and ${printableName(below)} below it: both cannot be made here`);
