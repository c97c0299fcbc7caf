'use strict';
/**
 * Jest's node environment, as a mutation run uses it (jest.stryker.config.ts): once a test has failed
 * for a mutant, its later tests are skipped, in that file and in the files after it.
 *
 * Stryker needs one failing test to call a mutant killed (it runs with bail off, so Jest would
 * otherwise run every test that covers the mutant, a slow one in a later file included, after the
 * mutant is already found). Skipping changes no outcome: a survivor has no failure, so all its tests
 * still run, and a killed mutant stays killed by the first test that fails. `npm test` never uses it.
 *
 * Stryker's test process runs one mutant's test files one after another in one Node process, which
 * loads this module once, so the mutant found is remembered here, by the id Stryker sets in the
 * environment for each mutant's run. The dry run (no mutant) skips nothing.
 */
const { TestEnvironment } = require('jest-environment-node');

/** The mutant whose run has had a failing test already. */
let failedMutant;

const activeMutant = () => process.env.__STRYKER_ACTIVE_MUTANT__;

class FirstFailureEnvironment extends TestEnvironment {
  async handleTestEvent(event) {
    const mutant = activeMutant();
    if (mutant === undefined) return;
    // A test's failure is known once it is done: its own, or a beforeEach's or afterEach's. Not earlier, at a
    // hook's failure: a failed beforeAll is charged to each test under it as it runs, and those tests, skipped,
    // would hide the mutant's only failure.
    if (event.name === 'test_done' && event.test.errors.length > 0) failedMutant = mutant;
    // Circus decides whether to run a test just after announcing its start: marked skipped here, it is.
    if (event.name === 'test_start' && failedMutant === mutant) event.test.mode = 'skip';
  }
}

module.exports = FirstFailureEnvironment;
