import '../session/support/fail-fast';
import { TransferSlots } from '../../../src/auth/transfer-slots';
import type { User } from '../../../src/auth/user';
import type { RxferConfig } from '../../../src/config/config.schema';
import { RxferError } from '../../../src/errors/rxfer-error';

const slotsWithLimit = (maxTransfersPerUser: number) => new TransferSlots({ limits: { maxTransfersPerUser } } as RxferConfig);
const alice: User = { name: 'alice', role: 'write', root: '' };
const bob: User = { name: 'bob', role: 'write', root: '' };

const busy = (take: () => unknown): RxferError | undefined => {
  try {
    take();
    return undefined;
  } catch (err) {
    return err as RxferError;
  }
};

describe('TransferSlots', () => {
  test('a user takes up to the limit; the next is refused BUSY with the real numbers', () => {
    const slots = slotsWithLimit(2);
    slots.take(alice);
    slots.take(alice);
    const err = busy(() => slots.take(alice));
    expect(err).toBeInstanceOf(RxferError);
    expect(err!.code).toBe('BUSY');
    expect(err!.message).toBe('alice already has 2 transfers in progress (limit 2); retry when one finishes');
    expect(err!.detail).toEqual({ used: 2, limit: 2 });
  });

  test('users have their own slots', () => {
    const slots = slotsWithLimit(1);
    slots.take(alice);
    expect(busy(() => slots.take(bob))).toBeUndefined();
    expect(busy(() => slots.take(alice))?.code).toBe('BUSY');
  });

  test('a slot given back can be taken again; giving back twice frees one slot only', () => {
    const slots = slotsWithLimit(2);
    const first = slots.take(alice);
    slots.take(alice);
    first();
    first();
    expect(busy(() => slots.take(alice))).toBeUndefined();
    expect(busy(() => slots.take(alice))?.code).toBe('BUSY');
  });

  test('every slot given back: the user starts from zero', () => {
    const slots = slotsWithLimit(2);
    const a = slots.take(alice);
    const b = slots.take(alice);
    a();
    b();
    slots.take(alice);
    slots.take(alice);
    expect(busy(() => slots.take(alice))?.message).toContain('already has 2 transfers');
  });

  test("one user's release does not free another's slot", () => {
    const slots = slotsWithLimit(1);
    const bobs = slots.take(bob);
    slots.take(alice);
    bobs();
    expect(busy(() => slots.take(alice))?.code).toBe('BUSY');
  });
});
