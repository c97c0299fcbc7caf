import { EXIT_OK, reportFailure } from './cli-failure';

export interface ServeFlags {
  readonly config?: string;
  readonly host?: string;
  readonly port?: number;
  readonly root?: string;
  readonly metricsPort?: number;
}

/** The shape of src/server/run-server.ts, written here so the CLI compiles on its own. */
interface ServerModule {
  runServer(options: {
    configPath?: string;
    overrides: { host?: string; port?: number; root?: string; metricsPort?: number };
    onStarted?: () => void;
  }): Promise<void>;
}

/**
 * Runs the server until SIGINT/SIGTERM (the server handles both and resolves once it stopped). Loaded
 * lazily: the server with its DI container and logger is most of the start-up cost and the client
 * commands do not need it.
 */
export const runServe = async (flags: ServeFlags): Promise<number> => {
  // SIGHUP's default action ends the process: one sent while the server starts (a reload right after
  // `systemctl start`, a log rotation) would kill it without a word. Held until the server's own
  // handler is in place, then delivered again so the reload happens.
  let hangupWhileStarting = false;
  const holdHangup = () => (hangupWhileStarting = true);
  process.on('SIGHUP', holdHangup);
  const onStarted = () => {
    process.off('SIGHUP', holdHangup);
    if (hangupWhileStarting) process.kill(process.pid, 'SIGHUP');
  };
  try {
    const { runServer } = require('../server/run-server') as ServerModule;
    const overrides = {
      ...(flags.host !== undefined && { host: flags.host }),
      ...(flags.port !== undefined && { port: flags.port }),
      ...(flags.root !== undefined && { root: flags.root }),
      ...(flags.metricsPort !== undefined && { metricsPort: flags.metricsPort }),
    };
    await runServer({ ...(flags.config !== undefined && { configPath: flags.config }), overrides, onStarted });
    return EXIT_OK;
  } catch (err) {
    return reportFailure(err);
  } finally {
    process.off('SIGHUP', holdHangup);
  }
};
