import { AddressInfo } from 'node:net';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { RxferConfig } from '../config/config.schema';
import { buildContainer } from '../container/build-container';
import { TOKENS } from '../container/tokens';
import { chooseLogFormat, createLogger } from '../logging/logger';

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  /** The operations listener (/metrics, /healthz, /readyz), when `metrics.port` is set. */
  readonly metrics?: AddressInfo;
  readonly container: Container;
  /** Orderly stop: see RxferServer.stop. The operations listener closes last. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** Rebind roles before anything is resolved (e.g. another storage adapter). */
  readonly customize?: (container: Container) => void;
}

/** Builds the container, resolves the server and starts listening (and the operations listener, if configured). */
export const startServer = async (config: RxferConfig, options: StartOptions = {}): Promise<RunningServer> => {
  const container = buildContainer(config, options.logger ?? createLogger(config.log.level, undefined, chooseLogFormat(config.log.format)));
  options.customize?.(container);
  const server = container.get(TOKENS.Server);
  const address = await server.start();
  let metrics: AddressInfo | undefined;
  const ops = config.metrics.port === null ? undefined : container.get(TOKENS.OpsHttp);
  if (ops) {
    try {
      metrics = await ops.listen(config.metrics.host, config.metrics.port!);
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
  return {
    host: address.address,
    port: address.port,
    ...(metrics && { metrics }),
    container,
    close: async () => {
      await server.stop();
      await ops?.close();
    },
  };
};
