import '../session/support/fail-fast';
import { AuthenticateStage } from '../../../src/pipeline/stages/authenticate.stage';
import type { UserDirectory } from '../../../src/auth/user-directory';
import type { Role, User } from '../../../src/auth/user';
import type { Command } from '../../../src/protocol/command';
import type { SessionEvent } from '../../../src/session/session-event';
import { captureLogs, fakeSession } from '../session/support/fake-session';
import { flush, runStage } from './support/run-stage';

const alice: User = { name: 'alice', role: 'write', root: '' };
const reader: User = { name: 'rita', role: 'read', root: '' };

/** A directory with one token per user (no scrypt: that is UserDirectory's own test). */
const directory = (anonymous: User | undefined, tokens: Record<string, User> = {}) => {
  const waits: Array<() => void> = [];
  let slow = false;
  const users = {
    anonymous: () => anonymous,
    authenticate: (token: string) =>
      slow ? new Promise<User | undefined>((resolve) => waits.push(() => resolve(tokens[token]))) : Promise.resolve(tokens[token]),
  } as unknown as UserDirectory;
  return { users, waits, slowDown: () => (slow = true) };
};

const setup = (anonymous: User | undefined, tokens: Record<string, User> = {}) => {
  const { logger, lines } = captureLogs();
  const ctx = fakeSession({ logger });
  const dir = directory(anonymous, tokens);
  const run = runStage(new AuthenticateStage(dir.users), ctx);
  const named = (command: Command): SessionEvent => ({ type: 'named', transfer: ctx.beginTransfer(command), raw: Buffer.from('f') });
  return { ctx, lines, dir, named, ...run };
};

describe('AuthenticateStage', () => {
  test('the session starts as the anonymous user, and its requests carry that user', () => {
    const anon: User = { name: 'anonymous', role: 'write', root: '' };
    const { ctx, input, out, named } = setup(anon);
    expect(ctx.user).toBe(anon);
    const event = named({ verb: 'UPLOAD', size: 1 });
    input.next(event);
    expect(out).toEqual([event]);
    expect((event as { transfer: { user?: User } }).transfer.user).toBe(anon);
  });

  test('without anonymous access a request before AUTH is refused AUTH_REQUIRED', () => {
    const { input, out, named } = setup(undefined);
    const event = named({ verb: 'STAT' });
    input.next(event);
    const transfer = (event as Extract<SessionEvent, { type: 'named' }>).transfer;
    expect(out).toEqual([{ type: 'refused', transfer, error: transfer.refusal }]);
    expect(transfer.refusal?.code).toBe('AUTH_REQUIRED');
    expect(transfer.refusal?.message).toBe('STAT needs AUTH first: this server has no anonymous access');
    expect(transfer.user).toBeUndefined();
  });

  test('a good token: OK auth, the session acts as that user from then on, logged with the user', async () => {
    const { ctx, input, out, named, lines } = setup(undefined, { good: alice });
    input.next({ type: 'login', token: 'good' });
    await flush();
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'authOk', user: 'alice', role: 'write' } }]);
    expect(ctx.user).toBe(alice);
    const line = lines.find((l) => l.msg === 'Authenticated as alice (write)');
    expect(line).toMatchObject({ user: 'alice', role: 'write', level: 30 });
    ctx.log.info('later');
    expect(lines.at(-1)).toMatchObject({ user: 'alice' });
    const event = named({ verb: 'DELETE' });
    input.next(event);
    expect(out.at(-1)).toBe(event);
  });

  test('a wrong token: AUTH_FAILED, closing, and every event behind it dropped', async () => {
    const anon: User = { name: 'anonymous', role: 'write', root: '' };
    const { ctx, input, out, named, lines } = setup(anon, { good: alice });
    input.next({ type: 'login', token: 'bad' });
    input.next(named({ verb: 'DELETE' }));
    input.next({ type: 'shutdown' });
    await flush();
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'error', code: 'AUTH_FAILED', message: 'unknown user or wrong token' }, closeAfter: true }]);
    expect(ctx.user).toBe(anon);
    expect(lines.find((l) => l.msg === 'Authentication failed')?.level).toBe(40);
  });

  test('events behind an AUTH wait for it, in order, and run as the new user', async () => {
    const { input, out, named, dir } = setup(undefined, { good: alice });
    dir.slowDown();
    input.next({ type: 'login', token: 'good' });
    const event = named({ verb: 'UPLOAD', size: 1 });
    input.next(event);
    await flush();
    expect(out).toEqual([]);
    dir.waits[0]!();
    await flush();
    expect(out.map((e) => e.type)).toEqual(['reply', 'named']);
  });

  test.each<[Role, Command['verb'], boolean]>([
    ['read', 'DOWNLOAD', true],
    ['read', 'LIST', true],
    ['read', 'STAT', true],
    ['read', 'UPLOAD', false],
    ['read', 'ADDFILE', false],
    ['read', 'DELETE', false],
    ['read', 'RENAME', false],
    ['read', 'MKDIR', false],
    ['read', 'RESUME', false],
    ['write', 'DELETE', true],
  ])('a %s user may %s: %s', (role, verb, allowed) => {
    const user: User = { ...reader, role };
    const { input, out, ctx } = setup(user);
    const command = (verb === 'UPLOAD' || verb === 'ADDFILE' ? { verb, size: 1 } : { verb }) as Command;
    const transfer = ctx.beginTransfer(command);
    const event: SessionEvent = { type: 'named', transfer, raw: Buffer.from('f') };
    input.next(event);
    if (allowed) {
      expect(out).toEqual([event]);
      expect(transfer.user).toBe(user);
      expect(transfer.refusal).toBeUndefined();
    } else {
      expect(out).toEqual([{ type: 'refused', transfer, error: transfer.refusal }]);
      expect(transfer.refusal?.code).toBe('FORBIDDEN');
      expect(transfer.refusal?.message).toBe(`rita (${role}) may not ${verb}`);
      expect(transfer.user).toBeUndefined();
    }
  });

  test('other events pass untouched', () => {
    const { input, out } = setup(undefined);
    const events: SessionEvent[] = [{ type: 'shutdown' }, { type: 'command', command: { verb: 'QUIT' } }];
    for (const event of events) input.next(event);
    expect(out).toEqual(events);
  });
});
