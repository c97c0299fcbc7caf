import { ConfigOverrides, loadConfig } from '../config/load-config';
import { chooseLogFormat, createLogger } from '../logging/logger';
import { reloadConfig } from './reload-config';
import { startServer } from './start-server';

export interface RunServerOptions {
  readonly configPath?: string;
  readonly overrides: ConfigOverrides;
}

/** 128 + the signal's number, as shells report a process killed by it. */
const EXIT_BY_SIGNAL: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * `rxfer serve`: runs until SIGINT or SIGTERM, then drains (stops accepting, /readyz turns 503,
 * transfers in flight get `server.shutdownGraceMs`) and exits 0. A second SIGINT or SIGTERM exits
 * at once. SIGHUP reloads users and limits from the config file (see reloadConfig).
 */
export const runServer = async ({ configPath, overrides }: RunServerOptions): Promise<void> => {
  const config = loadConfig({ configPath, overrides });
  const logger = createLogger(config.log.level, undefined, chooseLogFormat(config.log.format));
  const running = await startServer(config, { logger });
  const onHangup = () => void reloadConfig(config, configPath, overrides, logger);
  process.on('SIGHUP', onHangup);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      logger.info({ signal }, `Received ${signal}; draining (up to ${config.server.shutdownGraceMs} ms for transfers in flight; send it again to exit at once)`);
      const now = (second: NodeJS.Signals) => {
        logger.warn({ signal: second }, `Received ${second} while draining; exiting now`);
        logger.flush();
        process.exit(EXIT_BY_SIGNAL[second] ?? 1);
      };
      process.once('SIGINT', now);
      process.once('SIGTERM', now);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await running.close();
  process.off('SIGHUP', onHangup);
  logger.flush();
};
