'use strict';
/**
 * Jest's node environment, as a mutation run uses it (jest.stryker.config.ts): once a test has failed
 * for a mutant, its later tests are skipped, in that file and in the files after it.
 *
 * Stryker needs one failing test to call a mutant killed (it runs with bail off, so Jest would
 * otherwise run every test that covers the mutant, a slow one in a later file included, after the
 * mutant is already found). Skipping changes no outcome: a survivor has no failure, so all its tests
 * still run, and a killed mutant stays killed by the first test that fails. `npm test` never uses it.
 * test/unit/mutation/first-failure-environment.test.ts runs Jest with it on fixtures of each case below.
 *
 * Stryker's test process runs one mutant's test files one after another in one Node process, which
 * loads this module once, so the mutant found is remembered here, by the id Stryker sets in the
 * environment for each mutant's run. The dry run (no mutant) skips nothing.
 */
const { TestEnvironment } = require('jest-environment-node');

/** The mutant whose run has had a failing test already. */
let failedMutant;

const activeMutant = () => process.env.__STRYKER_ACTIVE_MUTANT__;

/** What `jest.retryTimes(n)` sets on the test file's global. */
const RETRY_TIMES = Symbol.for('RETRY_TIMES');

/** Every describe block and test under `block` skipped: their hooks do not run either. */
const skipAll = (block) => {
  block.mode = 'skip';
  for (const child of block.children) {
    if (child.type === 'describeBlock') skipAll(child);
    else child.mode = 'skip';
  }
};

class FirstFailureEnvironment extends TestEnvironment {
  async handleTestEvent(event, state) {
    const mutant = activeMutant();
    if (mutant === undefined) return;
    // A later file of a mutant already found is skipped whole, its beforeAll and afterAll too: an afterAll
    // that cleans up what its (skipped) tests made would throw, and Stryker reads a suite error as a
    // RuntimeError instead of the kill.
    if (event.name === 'run_start' && failedMutant === mutant) skipAll(state.rootDescribeBlock);
    // A test's failure is known once it is done: its own, or a beforeEach's or afterEach's. Not at a hook's
    // failure: a failed beforeAll is charged to each test under it as it runs, and those tests, skipped,
    // would hide the mutant's only failure. Nor while Jest may still retry it (jest.retryTimes): the retry,
    // skipped, would clear the failure.
    if (event.name === 'test_done' && event.test.errors.length > 0 && !this.mayRetry(event.test, state)) failedMutant = mutant;
    // Circus decides whether to run a test just after announcing its start: marked skipped here, it is.
    if (event.name === 'test_start' && failedMutant === mutant) event.test.mode = 'skip';
  }

  /** Whether Jest may run `test` again after this attempt: retries left for it, or a describe retried whole. */
  mayRetry(test, state) {
    const retries = Number(this.global[RETRY_TIMES]) || 0;
    if (retries > 0 && test.invocations <= retries) return true;
    for (let block = test.parent; block; block = block.parent) if (state.describeRetryOptions?.get(block)) return true;
    return false;
  }
}

module.exports = FirstFailureEnvironment;
