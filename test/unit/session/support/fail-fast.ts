import { config } from 'rxjs';

/**
 * For unit tests that run in milliseconds, so that a broken build (a mutant, under Stryker) fails
 * fast instead of hanging: a test waiting for something that never comes gives up after a few
 * seconds, not jest's 30 s (each hang costs a test-runner restart under Stryker), and an error an
 * operator lost (no subscriber took it) is recorded instead of being thrown from a timer, which
 * would crash the test process.
 */
export const unhandledRxErrors: unknown[] = [];
config.onUnhandledError = (err) => void unhandledRxErrors.push(err);
jest.setTimeout(4000);

// An error an operator lost is a failure of the test that lost it (it would otherwise pass unseen).
afterEach(() => {
  expect(unhandledRxErrors.splice(0)).toEqual([]);
});
