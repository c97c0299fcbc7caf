import { Container } from 'inversify';
import type { Logger } from 'pino';
import { RxferConfig } from '../config/config.schema';
import { buildContainer } from '../container/build-container';
import { TOKENS } from '../container/tokens';
import { createLogger } from '../logging/logger';

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  readonly container: Container;
  /** Orderly stop: see RxferServer.stop. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** Rebind roles before anything is resolved (e.g. another storage adapter). */
  readonly customize?: (container: Container) => void;
}

/** Builds the container, resolves the server and starts listening. */
export const startServer = async (config: RxferConfig, options: StartOptions = {}): Promise<RunningServer> => {
  const container = buildContainer(config, options.logger ?? createLogger(config.log.level));
  options.customize?.(container);
  const server = container.get(TOKENS.Server);
  const address = await server.start();
  return { host: address.address, port: address.port, container, close: () => server.stop() };
};
