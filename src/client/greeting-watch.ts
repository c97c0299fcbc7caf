import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RxferError } from '../errors/rxfer-error';
import { printableBytes } from './printable-bytes';

/** Every rxfer server's first line starts with one of these (a greeting, or a refusal such as TOO_MANY_CONNECTIONS). */
const FIRST_WORDS = ['OK rxfer/', 'ERR '];

/** A TLS record starts with its content type (0x14–0x18) and major version 3. */
const looksLikeTls = (bytes: Buffer): boolean => bytes.length >= 2 && bytes[0]! >= 0x14 && bytes[0]! <= 0x18 && bytes[1] === 0x03;

const couldBeGreeting = (bytes: Buffer): boolean =>
  FIRST_WORDS.some((word) => {
    const n = Math.min(word.length, bytes.length);
    return bytes.subarray(0, n).toString('latin1') === word.slice(0, n);
  });

/** The first bytes as a user can read them. */
const shown = (bytes: Buffer): string => printableBytes(bytes.subarray(0, 24));

/** A silent peer is asked whether it speaks TLS once this long has passed without a greeting. */
const PROBE_AFTER_MS = 1000;
const PROBE_TIMEOUT_MS = 3000;

export interface GreetingWatch {
  /** Why the peer is not an rxfer server, once that is known (it then also destroys the socket). */
  readonly verdict: RxferError | undefined;
  stop(): void;
}

/**
 * Tells early that the peer is not an rxfer server, instead of waiting for the greeting timeout:
 * the first bytes must start like a greeting (a TLS record means the server wants --tls). A plain
 * connection that hears nothing for a second may open one TLS probe beside it (unless `noProbe`): a
 * TLS server speaks only after the client's hello, so silence is all the main connection would get.
 */
export const watchGreeting = (socket: Socket, host: string, port: number, noProbe: boolean): GreetingWatch => {
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  let verdict: RxferError | undefined;
  let seen = Buffer.alloc(0);
  let probe: TLSSocket | undefined;
  const fail = (message: string, reason: string) => {
    verdict ??= new RxferError('PROTOCOL_VIOLATION', message, { host, port, reason });
    stop();
    socket.destroy(verdict);
  };
  const onData = (chunk: Buffer) => {
    clearTimeout(probeTimer);
    seen = Buffer.concat([seen, chunk]).subarray(0, 16);
    if (couldBeGreeting(seen)) {
      if (seen.length >= FIRST_WORDS[0]!.length) stop();
      return;
    }
    if (looksLikeTls(seen)) fail(`${where} answered with TLS, not plain rxfer: add --tls (or set RXFER_TLS=1)`, 'TLS_EXPECTED');
    else fail(`${where} is not an rxfer server (it answered "${shown(seen)}"): check the host and port`, 'NOT_RXFER');
  };
  // Before the reader's listener: the verdict is known before the reader parses the same bytes.
  socket.prependListener('data', onData);
  const probeTimer = setTimeout(() => {
    if (noProbe || socket.destroyed) return;
    // Required here, when a probe is due: node:tls is ≈ 6 ms of every CLI command's start-up otherwise.
    const { connect: connectTls } = require('node:tls') as typeof import('node:tls');
    probe = connectTls({ host, port, rejectUnauthorized: false, ...(isHostName(host) && { servername: host }) });
    probe.setTimeout(PROBE_TIMEOUT_MS, () => probe?.destroy());
    probe.on('error', () => undefined);
    probe.once('secureConnect', () => {
      probe?.destroy();
      fail(`${where} speaks TLS and sent no plain greeting: add --tls (or set RXFER_TLS=1)`, 'TLS_EXPECTED');
    });
  }, PROBE_AFTER_MS);
  probeTimer.unref();
  const stop = () => {
    clearTimeout(probeTimer);
    socket.removeListener('data', onData);
    probe?.destroy();
  };
  return {
    get verdict() {
      return verdict;
    },
    stop,
  };
};

const isHostName = (host: string): boolean => !/^[0-9.]+$/.test(host) && !host.includes(':');
