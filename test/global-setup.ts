import { ensureBuilt } from './helpers/build';

/**
 * Builds dist/ once before any test file, if src/ is newer: the CLI tests run the compiled code, and a
 * build left to the first of them (ensureBuilt) ran inside that test's 30 s budget, which a loaded
 * machine overran (a flakiness sweep, twenty-fifth session). CI's `npm ci` builds it already.
 *
 * Drops the host's NODE_EXTRA_CA_CERTS from the environment the test files and every process they start
 * inherit (Jest starts its workers after this). Node parses that bundle as it starts, before anything
 * else: ≈ 35 ms of CPU for each CLI or server the tests spawn with `node bin/rxfer.js`, which skips the
 * sh line that drops the variable for users' plain commands (hostile pass e). No test trusts the host's
 * CAs: every server is on loopback with a throw-away certificate, and the tests of the variable
 * itself set it (test/promises/cli-tls-token.test.ts, test/regressions/hostile-2026-12-05e-cli-ca.test.ts).
 */
export default (): void => {
  delete process.env['NODE_EXTRA_CA_CERTS'];
  ensureBuilt();
};
