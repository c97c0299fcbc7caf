import { RxferError } from '../../src/errors/rxfer-error';

/**
 * The RxferError `call` rejects with; a success, or a failure of another kind, fails the test with
 * that outcome (so a test that expects an error never passes on a call that did not fail).
 */
export const failureOf = async (call: Promise<unknown>): Promise<RxferError> => {
  const outcome = await call.then(
    () => new Error('expected a failure, but the call succeeded'),
    (err: unknown) => err,
  );
  if (!(outcome instanceof RxferError)) throw outcome;
  return outcome;
};
