import { nameLines, parseCommand } from '../../../src/protocol/command';
import { formatReply, parseReply } from '../../../src/protocol/reply';
import { listInPages } from '../../../src/client/list.request';
import { RxferError } from '../../../src/errors/rxfer-error';

/** LIST in pages (issue 17): the command words, the `more` flag, and the client's loop over pages. */
describe('LIST PAGED / LIST AFTER', () => {
  test('plain LIST is unchanged; PAGED takes one name line, AFTER two; anything else is refused', () => {
    expect(parseCommand('LIST')).toEqual({ verb: 'LIST' });
    expect(nameLines(parseCommand('LIST'))).toBe(1);
    expect(parseCommand('LIST PAGED')).toEqual({ verb: 'LIST', paged: true, after: false });
    expect(nameLines(parseCommand('list paged'))).toBe(1);
    expect(parseCommand('LIST AFTER')).toEqual({ verb: 'LIST', paged: true, after: true });
    expect(nameLines(parseCommand('LIST AFTER'))).toBe(2);
    for (const line of ['LIST MORE', 'LIST PAGED 10', 'LIST AFTER x']) expect(() => parseCommand(line)).toThrow(RxferError);
  });

  test('`more` goes on the wire only for a page with more after it, and is read back', () => {
    expect(formatReply({ kind: 'listing', bytes: 10, count: 1 })).toBe('OK list 10 1\n');
    expect(formatReply({ kind: 'listing', bytes: 10, count: 1, more: true })).toBe('OK list 10 1 more\n');
    expect(parseReply('OK list 10 1')).toEqual({ kind: 'listing', bytes: 10, count: 1 });
    expect(parseReply('OK list 10 1 more')).toEqual({ kind: 'listing', bytes: 10, count: 1, more: true });
    expect(() => parseReply('OK list 10 1 less')).toThrow(RxferError);
  });

  test('the client asks after the last name of each page until a page without more; a server that repeats itself is refused', async () => {
    const entry = (name: string) => ({ name, size: 1, mtimeMs: 0 });
    const asked: (string | undefined)[] = [];
    const pages = [[entry('a'), entry('b')], [entry('c')]];
    const all = await listInPages(async (after) => {
      asked.push(after);
      const page = pages[asked.length - 1]!;
      return { entries: page, more: asked.length < pages.length };
    });
    expect(all.map((e) => e.name)).toEqual(['a', 'b', 'c']);
    expect(asked).toEqual([undefined, 'b']);
    await expect(listInPages(async () => ({ entries: [entry('a')], more: true }))).rejects.toMatchObject({ code: 'PROTOCOL_VIOLATION' });
  });
});
