'use strict';
/**
 * Jest's node environment, as a mutation run uses it (jest.stryker.config.ts): once a test of the
 * file has failed, the file's later tests are skipped.
 *
 * Stryker needs one failing test to call a mutant killed (it runs with bail off, so Jest would
 * otherwise run every test that covers the mutant, a file's slow ones included, after the mutant is
 * already found). Skipping changes no outcome: a survivor has no failure, so all its tests still run,
 * and a killed mutant stays killed by the first test that fails. `npm test` never uses it.
 */
const { TestEnvironment } = require('jest-environment-node');

class FirstFailureEnvironment extends TestEnvironment {
  failed = false;

  async handleTestEvent(event) {
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.failed = true;
    // Circus decides whether to run a test just after announcing its start: marked skipped here, it is.
    if (event.name === 'test_start' && this.failed) event.test.mode = 'skip';
  }
}

module.exports = FirstFailureEnvironment;
