import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renameIntoFolder } from '../../../src/client/checked-rename';
import { SmallStagingFile } from '../../../src/client/small-staging-file';
import { StagingFile } from '../../../src/client/staging-file';

/**
 * renameIntoFolder (src/client/checked-rename.ts): a download's last step goes into the folder the
 * caller checked and no other, so a folder swapped for a symbolic link after its check is not written
 * through (hostile pass o, finding 3). Real folders and links; Linux shows descriptors' paths.
 */
describe('renameIntoFolder', () => {
  let dir: string;
  let sub: string;
  let elsewhere: string;
  beforeEach(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'rxfer-checked-rename-')));
    sub = join(dir, 'sub');
    elsewhere = join(dir, 'elsewhere');
    mkdirSync(sub);
    mkdirSync(elsewhere);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** After the check: `mv sub sub.parked; ln -s elsewhere sub`, as another program could. */
  const swapForLink = () => {
    renameSync(sub, join(dir, 'sub.parked'));
    symlinkSync(elsewhere, sub);
  };

  test('into the folder checked: renamed, over what was there', () => {
    writeFileSync(join(sub, '.x.part'), 'new');
    writeFileSync(join(sub, 'x'), 'old');
    renameIntoFolder(join(sub, '.x.part'), join(sub, 'x'), sub);
    expect(readdirSync(sub)).toEqual(['x']);
    expect(readFileSync(join(sub, 'x'), 'utf8')).toBe('new');
  });

  test('a folder swapped for a link since its check: ENOTDIR naming both, nothing renamed on either side', () => {
    writeFileSync(join(sub, '.x.part'), 'new');
    swapForLink();
    // Staged through the link, as a staging file opened by path after the swap would be.
    writeFileSync(join(elsewhere, '.x.part'), 'new');
    expect(() => renameIntoFolder(join(sub, '.x.part'), join(sub, 'x'), sub)).toThrow(
      expect.objectContaining({ code: 'ENOTDIR', message: expect.stringContaining(`now leads to ${elsewhere}`) }),
    );
    expect(readdirSync(elsewhere)).toEqual(['.x.part']);
    expect(readdirSync(join(dir, 'sub.parked'))).toEqual(['.x.part']);
  });

  test('the folder is opened and closed for each rename, whatever becomes of it: no descriptor left behind', () => {
    const open = () => readdirSync('/proc/self/fd').length;
    const before = open();
    for (let i = 0; i < 20; i++) {
      writeFileSync(join(sub, `.f${i}.part`), 'x');
      renameIntoFolder(join(sub, `.f${i}.part`), join(sub, `f${i}`), sub);
    }
    swapForLink();
    for (let i = 0; i < 20; i++) expect(() => renameIntoFolder(join(sub, '.g.part'), join(sub, 'g'), sub)).toThrow();
    expect(open()).toBe(before);
  });

  test('without a checked folder: a plain rename by path (a single download into a folder the user named)', () => {
    swapForLink();
    writeFileSync(join(elsewhere, '.x.part'), 'new');
    renameIntoFolder(join(sub, '.x.part'), join(sub, 'x'), undefined);
    expect(readdirSync(elsewhere)).toEqual(['x']);
  });

  test('the staging files of small and large downloads commit only into the checked folder, and leave nothing when it was swapped', async () => {
    const small = new SmallStagingFile(join(sub, 's'));
    (await small.startAt(0)).keep(Buffer.from('small'));
    const large = await StagingFile.create(join(sub, 'l'));
    await large.startAt(0).then((stream) => new Promise<void>((resolve, reject) => stream.write(Buffer.from('large'), (err) => (err ? reject(err) : resolve()))));
    swapForLink();
    await expect(small.commit(5, sub)).rejects.toMatchObject({ code: 'LOCAL_IO' });
    await expect(large.commit(5, sub)).rejects.toMatchObject({ code: 'LOCAL_IO' });
    expect(readdirSync(elsewhere)).toEqual([]);
    // The large one was staged before the swap, in the folder now parked: removing it by path missed it,
    // so it stays there under its staging name (never under the file's), inside the target.
    expect(readdirSync(join(dir, 'sub.parked'))).toEqual([expect.stringMatching(/^\.l\.rxfer-part-/)]);
  });
});
