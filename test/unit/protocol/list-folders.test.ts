import { nameLines, parseCommand } from '../../../src/protocol/command';
import { formatListingLine, listingCursor, parseListing } from '../../../src/protocol/listing';
import { listInPages, shapeFileListing } from '../../../src/client/list.request';
import { RxferError } from '../../../src/errors/rxfer-error';

/** LIST FOLDERS / SHALLOW (issue 19, issue 17): the words, the folder line, and the cursor after a folder. */
describe('LIST FOLDERS / LIST SHALLOW', () => {
  test('the words go after LIST, PAGED or AFTER, in any order, each once', () => {
    expect(parseCommand('LIST FOLDERS')).toEqual({ verb: 'LIST', folders: true });
    expect(parseCommand('list shallow folders')).toEqual({ verb: 'LIST', folders: true, shallow: true });
    expect(parseCommand('LIST FOLDERS PAGED')).toEqual({ verb: 'LIST', paged: true, after: false, folders: true });
    expect(parseCommand('LIST AFTER SHALLOW')).toEqual({ verb: 'LIST', paged: true, after: true, shallow: true });
    expect(nameLines(parseCommand('LIST SHALLOW AFTER FOLDERS'))).toBe(2);
    for (const line of ['LIST FOLDERS FOLDERS', 'LIST PAGED AFTER', 'LIST FOLDER', 'LIST SHALLOW x']) expect(() => parseCommand(line)).toThrow(RxferError);
  });

  test('a folder line is `- - <mtime> <name>/`, read back only when folders were asked for', () => {
    const line = formatListingLine({ name: 'a b/c', size: 0, mtimeMs: 12.7, folder: true });
    expect(line).toBe('- - 12 a b/c/\n');
    const body = Buffer.from(line + formatListingLine({ name: 'a b/c/d', size: 3, mtimeMs: 5 }));
    expect(parseListing(body, { folders: true })).toEqual([{ name: 'a b/c', size: 0, mtimeMs: 12, folder: true }, { name: 'a b/c/d', size: 3, mtimeMs: 5 }]);
    expect(() => parseListing(body)).toThrow(expect.objectContaining({ code: 'PROTOCOL_VIOLATION' }));
    expect(listingCursor({ name: 'a b/c', size: 0, mtimeMs: 0, folder: true })).toBe('a b/c/');
    expect(listingCursor({ name: 'a b/c/d', size: 3, mtimeMs: 0 })).toBe('a b/c/d');
  });

  test('a page that ends on a folder goes on after its name with the slash', async () => {
    const asked: (string | undefined)[] = [];
    const pages = [[{ name: 'f/a', size: 0, mtimeMs: 0, folder: true as const }], [{ name: 'f/a/x', size: 1, mtimeMs: 0 }]];
    const all = await listInPages(async (after) => {
      asked.push(after);
      return { entries: pages[asked.length - 1]!, more: asked.length < pages.length };
    });
    expect(asked).toEqual([undefined, 'f/a/']);
    expect(all.map((entry) => entry.name)).toEqual(['f/a', 'f/a/x']);
  });

  test('from an older server’s file listing: one level, and the folders that hold files', () => {
    const files = ['f/x', 'f/a/b', 'f/a/c/d', 'f/z/1'].map((name) => ({ name, size: 1, mtimeMs: 0 }));
    const shown = (shallow: boolean) => shapeFileListing('f', files, { folders: true, shallow }).map((e) => (e.folder ? `${e.name}/` : e.name));
    expect(shown(true)).toEqual(['f/x', 'f/a/', 'f/z/']);
    expect(shown(false)).toEqual(['f/x', 'f/a/', 'f/a/b', 'f/a/c/', 'f/a/c/d', 'f/z/', 'f/z/1']);
  });
});
