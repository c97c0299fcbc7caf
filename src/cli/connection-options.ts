import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { RxferError } from '../errors/rxfer-error';
import type { ConnectOptions } from '../client/client-options';
import { HASH_ALGORITHMS, type HashAlgorithm } from '../integrity/hash-algorithm';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 9000;

const portParser = (lowest: number) => (value: string): number => {
  // Decimal digits only: `Number()` would also take `0x50`, `1e3` or ` 80 `.
  const port = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= lowest && port <= 65535)) throw new InvalidArgumentError(`expected a port number from ${lowest} to 65535.`);
  return port;
};

const parseSeconds = (value: string): number => {
  const seconds = /^[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) : NaN;
  if (!(seconds > 0 && seconds <= 3600)) throw new InvalidArgumentError('expected a number of seconds from 0.1 to 3600.');
  return seconds;
};

/** A port to connect to: 1–65535. */
export const parsePort = portParser(1);
/** A port to listen on: 0 asks the OS for a free one (the server logs which). */
export const parseListenPort = portParser(0);

/**
 * `-H` as users write it: `files.lan`, `files.lan:9100`, `[::1]:9100`, `[::1]` or a bare `::1`
 * (a bare IPv6 address has no port: its colons are its own).
 */
export const splitHostPort = (value: string): { host: string; port?: number } => {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
  const [host, portText] = bracketed ? [bracketed[1]!, bracketed[2]] : value.split(':').length === 2 ? value.split(':') : [value, undefined];
  if (host === undefined || host === '' || /[[\]]/.test(host)) throw new InvalidArgumentError(`expected HOST, HOST:PORT or [IPv6]:PORT, not ${JSON.stringify(value)}.`);
  if (portText === undefined) return { host };
  try {
    return { host, port: parsePort(portText) };
  } catch {
    throw new InvalidArgumentError(`${JSON.stringify(value)}: expected HOST:PORT with a port number from 1 to 65535.`);
  }
};

/**
 * Applies a port given in `-H host:port`. Given twice and differently (`-H h:1 -p 2`, or RXFER_PORT),
 * it is refused rather than one silently winning.
 */
export const applyHostPort = (command: Command): void => {
  const raw = command.getOptionValue('host') as string | undefined;
  if (raw === undefined) return;
  const { host, port } = splitHostPort(raw);
  command.setOptionValueWithSource('host', host, command.getOptionValueSource('host') ?? 'cli');
  if (port === undefined) return;
  const source = command.getOptionValueSource('port');
  const given = command.getOptionValue('port') as number;
  if ((source === 'cli' || source === 'env') && given !== port) {
    throw new InvalidArgumentError(`the port is given twice: ${port} in -H ${raw} and ${given} in ${source === 'env' ? 'RXFER_PORT' : '-p'}.`);
  }
  command.setOptionValueWithSource('port', port, 'cli');
};

export interface ConnectionFlags {
  readonly host: string;
  readonly port: number;
  readonly quiet?: boolean;
  readonly tls?: boolean;
  readonly ca?: string;
  readonly token?: string;
  readonly hash?: HashAlgorithm;
  readonly connectTimeout?: number;
}

/** The options every client command shares; RXFER_HOST / RXFER_PORT set defaults for a session. */
export const addConnectionOptions = (command: Command): Command =>
  command
    .addOption(new Option('-H, --host <host>', 'server host, or HOST:PORT, [IPv6]:PORT').env('RXFER_HOST').default(DEFAULT_HOST))
    .addOption(new Option('-p, --port <port>', 'server port').env('RXFER_PORT').default(DEFAULT_PORT).argParser(parsePort))
    .option('-q, --quiet', 'print nothing but errors (no progress bar, no summary line)')
    .addOption(new Option('--connect-timeout <seconds>', 'give up when the server has not greeted within this many seconds (default 10)').argParser(parseSeconds))
    .addOption(new Option('--tls', 'connect with TLS (the server certificate is verified)').env('RXFER_TLS'))
    .addOption(new Option('--ca <file>', 'trust this CA certificate (PEM) for --tls, instead of the system CAs').env('RXFER_CA'))
    // The environment is the safe place for a token: a command-line argument shows in `ps`.
    .addOption(new Option('--token <token>', 'authenticate with this token (prefer the RXFER_TOKEN variable)').env('RXFER_TOKEN'))
    .addOption(
      new Option('--hash <algorithm>', 'verify transfers with sha256 (default; what sha256sum prints) or blake3 (≈ 5× less CPU, faster on busy machines)')
        .choices(HASH_ALGORITHMS)
        .env('RXFER_HASH'),
    );

/** Flags to client options; --ca implies --tls (nobody names a CA for plain TCP). */
export const connectOptions = (flags: ConnectionFlags): ConnectOptions => {
  let ca: Buffer | undefined;
  if (flags.ca !== undefined) {
    try {
      ca = readFileSync(flags.ca);
    } catch (err) {
      throw new RxferError('LOCAL_IO', `cannot read the CA file ${flags.ca}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  return {
    host: flags.host,
    port: flags.port,
    // A user who forgot --tls hears so in a second, not after the greeting timeout.
    tlsProbe: true,
    ...((flags.tls || ca) && { tls: ca ? { ca } : {} }),
    ...(flags.token !== undefined && { token: flags.token }),
    ...(flags.hash !== undefined && { hash: flags.hash }),
    ...(flags.connectTimeout !== undefined && { connectTimeoutMs: Math.round(flags.connectTimeout * 1000) }),
  };
};
