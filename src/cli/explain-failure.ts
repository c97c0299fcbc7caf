import type { ErrorCode } from '../errors/error-code';
import { RxferError, toRxferError } from '../errors/rxfer-error';

/** A failure as the CLI prints it: the stable code, a message in words, the exit status. */
export interface Explained {
  readonly code: ErrorCode;
  readonly message: string;
  readonly exit: number;
  readonly detail?: Readonly<Record<string, number | string>>;
}

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Retrying the same command line cannot work: exit 2, like commander's own usage errors. */
const USAGE_CODES = new Set<ErrorCode>(['CONFIG_INVALID', 'USAGE']);

const where = (host: string, port: number | string): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** Reasons Node gives for a failed connect, as a user would say them. */
const CONNECT_REASONS: Readonly<Record<string, (at: string, host: string) => string>> = {
  ECONNREFUSED: (at) => `could not connect to ${at} — is \`rxfer serve\` running there? (connection refused)`,
  ENOTFOUND: (at, host) => `could not connect to ${at}: no host named ${host} was found (ENOTFOUND); check the spelling or RXFER_HOST`,
  EAI_AGAIN: (at, host) => `could not connect to ${at}: the name ${host} could not be looked up now (EAI_AGAIN); check the network or DNS`,
  ETIMEDOUT: (at) => `could not connect to ${at}: no answer (ETIMEDOUT); is the host up, and the port open in its firewall?`,
  EHOSTUNREACH: (at) => `could not connect to ${at}: the host cannot be reached (EHOSTUNREACH)`,
  ENETUNREACH: (at) => `could not connect to ${at}: the network cannot be reached (ENETUNREACH)`,
  ECONNRESET: (at) => `${at} closed the connection at once (ECONNRESET): is it an rxfer server, and does it want --tls?`,
  EADDRNOTAVAIL: (at) => `could not connect to ${at}: that address is not available here (EADDRNOTAVAIL)`,
  // A TLS client met something that is not TLS (a plain rxfer server greets in plain text).
  ERR_SSL_WRONG_VERSION_NUMBER: (at) => `${at} does not speak TLS (it answered in plain text): drop --tls, or check the port`,
  ERR_SSL_PACKET_LENGTH_TOO_LONG: (at) => `${at} does not speak TLS (it answered in plain text): drop --tls, or check the port`,
  EPROTO: (at) => `${at} does not speak TLS as expected (EPROTO): drop --tls if it is a plain rxfer server`,
};

const CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|certificate/i;

/** Connection failures, told from their detail (host, port, reason) rather than their wording. */
const explainConnection = (error: RxferError, tls: boolean): string | undefined => {
  const detail = error.detail ?? {};
  const reason = String(detail['reason'] ?? '');
  if (detail['host'] === undefined || detail['port'] === undefined) return undefined;
  const host = String(detail['host']);
  const at = where(host, detail['port']);
  if (reason === 'NO_GREETING') {
    const hint = tls ? 'is it an rxfer server with TLS on?' : 'is it an rxfer server? (if it uses TLS, add --tls)';
    return `${at} accepted the connection but sent no rxfer greeting: ${hint}`;
  }
  const known = CONNECT_REASONS[reason];
  if (known) return known(at, host);
  if (CERTIFICATE.test(reason)) return `${error.message}: the server's certificate is not trusted; pass its CA with --ca FILE (or RXFER_CA)`;
  return undefined;
};

/**
 * The message a user reads for a failure, with the exit status. Library messages stay as they are
 * where they already say what to do; connection failures are put in words and name host and port.
 */
export const explainFailure = (err: unknown, context: { readonly tls?: boolean } = {}): Explained => {
  const error = err instanceof RxferError ? err : toRxferError(err);
  const exit = USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILED;
  const message = (error.code === 'CONNECTION_LOST' && explainConnection(error, context.tls === true)) || error.message;
  return { code: error.code, message, exit, ...(error.detail !== undefined && { detail: error.detail }) };
};

/** `rxfer: ERR <CODE> <message>` (stable for scripts), or with --json one JSON object, on stderr. */
export const formatFailure = (explained: Explained, json: boolean): string =>
  json
    ? JSON.stringify({ code: explained.code, message: explained.message, exit: explained.exit, ...(explained.detail && { detail: explained.detail }) }) + '\n'
    : `rxfer: ERR ${explained.code} ${explained.message}\n`;
