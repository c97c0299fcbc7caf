import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import pino, { Logger } from 'pino';
import type { RxferConfigInput } from '../../../../src/config/config.schema';
import { parseConfig } from '../../../../src/config/load-config';
import { SessionContext } from '../../../../src/session/session-context';
import type { SessionObserver } from '../../../../src/session/session-observer';

/** Log lines as objects, for tests that read what the session logged. */
export const captureLogs = (): { logger: Logger; lines: Record<string, unknown>[] } => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
};

/** A stream standing in for the socket (the context pauses and resumes it, and reads its address). */
export const fakeSocket = (): Socket => Object.assign(new PassThrough(), { remoteAddress: '127.0.0.9', remotePort: 4242 }) as unknown as Socket;

/** Every observer call, in order, as [method, ...args]. */
export const recordingObserver = (): { observer: SessionObserver; calls: unknown[][] } => {
  const calls: unknown[][] = [];
  const record =
    (name: string) =>
    (...args: unknown[]) =>
      void calls.push([name, ...args]);
  const observer: SessionObserver = {
    connectionOpened: record('connectionOpened'),
    connectionClosed: record('connectionClosed'),
    dataReceived: record('dataReceived'),
    dataSent: record('dataSent'),
    replied: record('replied'),
    requestEnded: record('requestEnded'),
    sessionFailed: record('sessionFailed'),
  };
  return { observer, calls };
};

export interface FakeSessionOptions {
  readonly limits?: NonNullable<RxferConfigInput['limits']>;
  readonly observer?: SessionObserver;
  readonly logger?: Logger;
  readonly socket?: Socket;
}

/** A real SessionContext over a fake socket: what a stage's unit test runs against. */
export const fakeSession = (options: FakeSessionOptions = {}): SessionContext => {
  const config = parseConfig({ storage: { kind: 'local', root: '/nonexistent-rxfer-unit' }, limits: { ...options.limits } });
  return new SessionContext(options.socket ?? fakeSocket(), config, options.logger ?? pino({ level: 'silent' }), options.observer);
};

/** Resolves true when `promise` settles within a few microtask turns (nothing else is waited for). */
export const settlesNow = async (promise: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
};
