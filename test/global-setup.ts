import { ensureBuilt } from './helpers/build';

/**
 * Builds dist/ once before any test file, if src/ is newer: the CLI tests run the compiled code, and a
 * build left to the first of them (ensureBuilt) ran inside that test's 30 s budget, which a loaded
 * machine overran (a flakiness sweep, twenty-fifth session). CI's `npm ci` builds it already.
 */
export default (): void => ensureBuilt();
