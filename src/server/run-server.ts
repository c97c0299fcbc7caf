import { ConfigOverrides, loadConfig } from '../config/load-config';
import { chooseLogFormat, createLogger, giveUpOnLogReaderAfter } from '../logging/logger';
import { reloadConfig } from './reload-config';
import { startServer } from './start-server';

export interface RunServerOptions {
  readonly configPath?: string;
  readonly overrides: ConfigOverrides;
  /** Called once SIGHUP reloads the config (the server is up); until then the caller must hold SIGHUP. */
  readonly onStarted?: () => void;
}

/** 128 + the signal's number, as shells report a process killed by it. */
const EXIT_BY_SIGNAL: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * `rxfer serve`: runs until SIGINT or SIGTERM, then drains (stops accepting, /readyz turns 503,
 * transfers in flight get `server.shutdownGraceMs`) and exits 0. A second SIGINT or SIGTERM exits
 * at once. SIGHUP reloads users and limits from the config file (see reloadConfig).
 */
export const runServer = async ({ configPath, overrides, onStarted }: RunServerOptions): Promise<void> => {
  const config = loadConfig({ configPath, overrides });
  const logger = createLogger(config.log.level, undefined, chooseLogFormat(config.log.format));
  const running = await startServer(config, { logger });
  const onHangup = () => void reloadConfig(config, configPath, overrides, logger);
  process.on('SIGHUP', onHangup);
  onStarted?.();
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      logger.info({ signal }, `Received ${signal}; draining (up to ${config.server.shutdownGraceMs} ms for transfers in flight; send it again to exit at once)`);
      const now = (second: NodeJS.Signals) => {
        logger.warn({ signal: second }, `Received ${second} while draining; exiting now`);
        logger.flush();
        // "At once": the exit's flush of buffered lines gets a moment, not as long as stdout stays full.
        giveUpOnLogReaderAfter(LOG_DRAIN_MS);
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
  // Log lines still buffered for a stdout that is read slowly or not at all (at most
  // MAX_BUFFERED_LOG_BYTES) kept the stopped process alive for as long as the reader lagged: minutes
  // after 200,000 uploads (issue 17). They get LOG_DRAIN_MS, then the process exits without them.
  // Unref'd: a process with nothing left to write exits at once, as before.
  setTimeout(() => {
    giveUpOnLogReaderAfter(0);
    process.exit();
  }, LOG_DRAIN_MS).unref();
};

/** How long a stopped server waits for its buffered log lines to be read before it exits anyway. */
const LOG_DRAIN_MS = 5000;
