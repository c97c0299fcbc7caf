import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, join, relative, isAbsolute, sep } from 'node:path';
import { RxferError } from '../errors/rxfer-error';
import { RemoteName } from '../protocol/remote-name';
import { isLinkOnTheWay, outsideTheRoot, storageError } from './storage-errors';
import { inOpenedFolder } from './opened-paths';

const FOLDER_CHECK_TTL_MS = 1000;

/**
 * The one place a remote name becomes a server path. Names were already checked lexically by
 * parseRemoteName; here we also make sure the real (symlink-resolved) folder stays inside the root,
 * because a lexical check cannot see a link someone planted inside the tree.
 */
export class RootPaths {
  /** Folders recently created and checked, by path: real path and when it was checked. */
  private readonly checked = new Map<string, { real: string; at: number }>();
  /** Folder checks and creations under way, by jail and folder: asked for again, they are shared. */
  private readonly creating = new Map<string, Promise<string>>();

  /** The root with one separator after it: a name's path is this and the name. */
  private readonly rootAndSep: string;

  constructor(readonly realRoot: string) {
    this.rootAndSep = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  }

  static async open(root: string): Promise<RootPaths> {
    await mkdir(root, { recursive: true });
    return new RootPaths(await realpath(root));
  }

  /**
   * A RemoteName is already normal (parseRemoteName: no empty, `.` or `..` segment, no leading or
   * trailing `/`), so it is appended as it is: `join` would change nothing, and its normalizing was
   * the largest single source of a small upload's garbage (issue 20). '' is the root itself.
   */
  pathOf(name: RemoteName): string {
    if (name === '') return this.realRoot;
    return sep === '/' ? this.rootAndSep + name : join(this.realRoot, ...name.split('/'));
  }

  /** The folder of `jail` ('' for the whole storage), with a trailing separator: what lies below it starts so. */
  prefixOf(jail = ''): string {
    return (jail === '' ? this.realRoot : join(this.realRoot, ...jail.split('/'))) + sep;
  }

  /**
   * Throws unless `path` is inside `jail` (a folder of the storage, '' for all of it), so that a link
   * inside one user's folder cannot lead into another's.
   */
  assertInside(path: string, name: RemoteName, jail = ''): void {
    const rel = relative(jail === '' ? this.realRoot : join(this.realRoot, ...jail.split('/')), path);
    if (rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel))) return;
    throw outsideTheRoot(name);
  }

  /**
   * The real folder a file of this name lives in, checked for containment; undefined if missing.
   * A check is reused for a second, as in folderFor: a burst of downloads from one folder resolves
   * it once (realpath was a tenth of the server's time for 2,000 small downloads). A folder deleted
   * meanwhile then shows as the file missing when it is opened.
   */
  async existingFolderOf(name: RemoteName, jail = ''): Promise<string | undefined> {
    const folderPath = dirname(this.pathOf(name));
    const recent = this.recentCheck(folderPath, jail);
    if (recent !== undefined) return recent;
    const folder = await this.realOrMissing(folderPath, name, jail);
    if (folder !== undefined) this.remember(folderPath, jail, folder);
    return folder;
  }

  /**
   * The real path of `path` (below the storage root), checked inside `jail`; undefined if it does not
   * exist. Missing is only ever said of a name that is missing *inside*: when realpath fails, the
   * deepest folder that exists is checked in its turn (existingAncestor), so a link on the way that
   * leads outside, or nowhere, is NAME_INVALID whatever lies (or does not lie) at its end. Answering
   * "missing" there told a client which names do not exist outside the root (hostile pass l: LIST of
   * `d/secret.txt` through a link `d` to outside: NAME_INVALID if it exists there, an empty list if not).
   */
  async realOrMissing(path: string, name: RemoteName, jail: string): Promise<string | undefined> {
    // One walk up from `path` itself: its own realpath is the walk's first step (it was taken twice).
    const found = await this.existingAncestor(path, name, jail);
    if (found.path !== path) return undefined;
    // The walk checks a folder above the user's own against the storage only; `path` itself, against the jail.
    this.assertInside(found.real, name, jail);
    return found.real;
  }

  /**
   * The deepest folder of `folderPath` that exists, checked inside the jail (or, above the user's own
   * root not made yet, inside the storage): its path and its real path.
   */
  private async existingAncestor(folderPath: string, name: RemoteName, jail: string): Promise<{ path: string; real: string }> {
    const jailPath = jail === '' ? this.realRoot : join(this.realRoot, ...jail.split('/'));
    for (let path = folderPath; ; path = dirname(path)) {
      // An existing folder above the user's own (their root not created yet) must only be inside
      // the storage; the folders made below it are made one by one through it (createFolderFor).
      const below = path === jailPath || path.startsWith(jailPath + sep);
      try {
        const real = await realpath(path);
        this.assertInside(real, name, below ? jail : '');
        return { path, real };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A loop of links leads nowhere: refused as one that leads outside, in the same words.
        if (code === 'ELOOP') throw outsideTheRoot(name);
        if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path === this.realRoot || dirname(path) === path) {
          throw err instanceof RxferError ? err : storageError(err, 'resolve', name);
        }
        // A link that leads nowhere: refused like one that leads outside, not looked past (where it
        // points, outside the root, missing or not, must not change the answer).
        if ((await lstat(path).catch(() => undefined))?.isSymbolicLink()) throw outsideTheRoot(name);
      }
    }
  }

  /** A folder was deleted or renamed: checks remembered for it (and below it) are void. */
  forgetFolders(): void {
    this.checked.clear();
    // One under way may have looked before the change: those asking from now on look again.
    this.creating.clear();
  }

  /**
   * Like existingFolderOf, creating missing folders first. The check is reused for a second: a burst
   * of small files into one folder pays mkdir + realpath once, not per file. (A symlink swapped in by
   * someone with shell access to the storage within that second is outside the threat model; see
   * the README's security section.)
   */
  async folderFor(name: RemoteName, jail = ''): Promise<string> {
    const folderPath = dirname(this.pathOf(name));
    const recent = this.recentCheck(folderPath, jail);
    if (recent !== undefined) return recent;
    // Files of one new folder asked for side by side (a BATCH commits its files concurrently) share
    // one check and creation: each made its own, a walk and a mkdir per file instead of per folder.
    const key = `${jail}\0${folderPath}`;
    const under = this.creating.get(key);
    // A shared creation that failed names the file that started it: each other file then tries on
    // its own, so that its refusal is its own (hostile pass n).
    if (under !== undefined) return under.catch(() => this.createAndRemember(name, jail, folderPath));
    const creating = this.createAndRemember(name, jail, folderPath);
    this.creating.set(key, creating);
    try {
      return await creating;
    } finally {
      if (this.creating.get(key) === creating) this.creating.delete(key);
    }
  }

  private async createAndRemember(name: RemoteName, jail: string, folderPath: string): Promise<string> {
    const real = await this.createFolderFor(name, jail);
    this.remember(folderPath, jail, real);
    return real;
  }

  /** The real path of `folderPath` if it was found inside `jail` less than a second ago. */
  private recentCheck(folderPath: string, jail: string): string | undefined {
    const recent = this.checked.get(`${jail}\0${folderPath}`);
    return recent && Date.now() - recent.at < FOLDER_CHECK_TTL_MS ? recent.real : undefined;
  }

  private remember(folderPath: string, jail: string, real: string): void {
    if (this.checked.size > 10_000) this.checked.clear();
    this.checked.set(`${jail}\0${folderPath}`, { real, at: Date.now() });
  }

  /**
   * Runs `work` in the folder for `name` (folderFor). The folder check is cached for a second, so the
   * folder may have been deleted by other means meanwhile: if `work` finds it missing (ENOENT, or
   * NOT_FOUND from storageError), the folder is checked and created again and `work` runs once more.
   * The same if it finds the folder swapped for a link since (isLinkOnTheWay): the check made again
   * answers as it would have without the cached one (a link out of the root refused, one into another
   * folder of the root followed), so the reply never depends on whether a check was cached (hostile pass r).
   */
  async inFolderFor<T>(name: RemoteName, jail: string, work: (folder: string) => Promise<T>): Promise<T> {
    const missing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT' || (err instanceof RxferError && err.code === 'NOT_FOUND');
    return this.inCheckedAgain(await this.folderFor(name, jail), () => this.folderFor(name, jail), work, (err) => missing(err) || isLinkOnTheWay(err));
  }

  /**
   * Runs `work` in `folder`, a check's answer (perhaps the cached one); if `work` finds the folder
   * changed since (`changedSince`: by default swapped for a link, isLinkOnTheWay), every cached check
   * is forgotten and `work` runs once more, in what `checkAgain` answers now (hostile pass r).
   */
  async inCheckedAgain<F, T>(folder: F, checkAgain: () => Promise<F>, work: (folder: F) => Promise<T>, changedSince: (err: unknown) => boolean = isLinkOnTheWay): Promise<T> {
    try {
      return await work(folder);
    } catch (err) {
      if (!changedSince(err)) throw err;
      this.forgetFolders();
      return work(await checkAgain());
    }
  }

  private async createFolderFor(name: RemoteName, jail: string): Promise<string> {
    const folderPath = dirname(this.pathOf(name));
    // Check the deepest folder that already exists *before* any mkdir, then make the missing ones one
    // at a time, each inside the one above it, opened and shown to be that folder (opened-paths.ts):
    // mkdir -p by path through a link planted, or swapped in meanwhile, made folders outside the root
    // before any check could refuse (hostile passes of 2026-11 and j).
    const { path: existing, real } = await this.existingAncestor(folderPath, name, jail);
    const missing = relative(existing, folderPath);
    try {
      // The folder itself exists: it must be one ("a" a file, "a/b" asked for).
      if (missing === '' && !(await stat(real)).isDirectory()) throw Object.assign(new Error(`${real} is not a folder`), { code: 'ENOTDIR' });
      let parent = real;
      for (const segment of missing === '' ? [] : missing.split(sep)) {
        const folder = join(parent, segment);
        await inOpenedFolder(parent, folder, async (inside) => {
          const made = join(inside, segment);
          // Made meanwhile by another request: fine if it is a folder (a file, or a link, is in the way).
          const already = await mkdir(made).then(() => false, (err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? true : Promise.reject(err)));
          if (already && !(await lstat(made)).isDirectory()) throw Object.assign(new Error(`${folder} is not a folder`), { code: 'ENOTDIR' });
        });
        parent = folder;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A file where a folder is needed ("a" exists, "a/b" is asked for).
      if (code === 'EEXIST' || code === 'ENOTDIR') throw new RxferError('NAME_CONFLICT', `cannot create the folder for ${name}: a file is in the way`);
      // A folder above removed or moved while it was made: as a conflict, which a caller may check again
      // under the name's lock (folderForNow), never "NOT FOUND <name> does not exist", which an upload
      // or MKDIR must not be told (hostile pass p on 6b667cc, a folder swapped in a loop).
      if (code === 'ENOENT') throw new RxferError('NAME_CONFLICT', `cannot create the folder for ${name}: a folder above it was removed or moved meanwhile`);
      throw storageError(err, 'create the folder for', name);
    }
    const folder = await this.existingFolderOf(name, jail);
    if (folder === undefined) throw new RxferError('NAME_CONFLICT', `cannot create the folder for ${name}`);
    return folder;
  }
}
