import { ConfigOverrides, loadConfig } from '../config/load-config';
import { createLogger } from '../logging/logger';
import { startServer } from './start-server';

export interface RunServerOptions {
  readonly configPath?: string;
  readonly overrides: ConfigOverrides;
}

/** `rxfer serve`: runs until SIGINT or SIGTERM, then stops in order. A second signal exits at once. */
export const runServer = async ({ configPath, overrides }: RunServerOptions): Promise<void> => {
  const config = loadConfig({ configPath, overrides });
  const logger = createLogger(config.log.level);
  const server = await startServer(config, { logger });
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, `Received ${signal}; stopping (up to ${config.server.shutdownGraceMs} ms for transfers in flight)`);
      process.once(signal, () => process.exit(130));
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await server.close();
  logger.flush();
};
