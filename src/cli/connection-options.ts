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

/** A port to connect to: 1–65535. */
export const parsePort = portParser(1);
/** A port to listen on: 0 asks the OS for a free one (the server logs which). */
export const parseListenPort = portParser(0);

export interface ConnectionFlags {
  readonly host: string;
  readonly port: number;
  readonly quiet?: boolean;
  readonly tls?: boolean;
  readonly ca?: string;
  readonly token?: string;
  readonly hash?: HashAlgorithm;
}

/** The options every client command shares; RXFER_HOST / RXFER_PORT set defaults for a session. */
export const addConnectionOptions = (command: Command): Command =>
  command
    .addOption(new Option('-H, --host <host>', 'server host').env('RXFER_HOST').default(DEFAULT_HOST))
    .addOption(new Option('-p, --port <port>', 'server port').env('RXFER_PORT').default(DEFAULT_PORT).argParser(parsePort))
    .option('-q, --quiet', 'print nothing but errors (no progress bar, no summary line)')
    .addOption(new Option('--tls', 'connect with TLS (the server certificate is verified)').env('RXFER_TLS'))
    .addOption(new Option('--ca <file>', 'trust this CA certificate (PEM) for --tls, besides the system CAs').env('RXFER_CA'))
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
    ...((flags.tls || ca) && { tls: ca ? { ca } : {} }),
    ...(flags.token !== undefined && { token: flags.token }),
    ...(flags.hash !== undefined && { hash: flags.hash }),
  };
};
