import pino, { Logger } from 'pino';
import { terminalSafeStdout } from './terminal-safe-stream';

export type LogFormat = 'json' | 'pretty';

/** The format to use: the config's choice, else readable lines on a terminal and JSON for anything else. */
export const chooseLogFormat = (configured: LogFormat | undefined, stdoutIsTty = process.stdout.isTTY === true): LogFormat =>
  configured ?? (stdoutIsTty ? 'pretty' : 'json');

/**
 * Readable lines ("14:02:11 INFO  Server listening on 127.0.0.1 port 9000" plus the fields that
 * matter) through pino-pretty, in this thread (a worker transport would lose the last lines at
 * exit). Colour only on a terminal. Loaded only when used.
 */
const prettyStream = (): pino.DestinationStream => {
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pretty({
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    singleLine: true,
    // Names chosen by clients can hold bidi overrides and line separators: escaped on the way out.
    destination: terminalSafeStdout(),
  });
};

/**
 * Structured logs: one JSON object a line on stdout, to ship and query, the human sentence of each
 * line in `msg` ("Server listening on 127.0.0.1 port 9000"); or the same lines made readable for
 * a person at a terminal (`format: "pretty"`).
 */
export const createLogger = (level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger => {
  const options = { name: 'rxfer', level };
  if (destination) return pino(options, destination);
  return pino(options, format === 'pretty' ? prettyStream() : boundedStdout());
};

/**
 * Log bytes held in memory while stdout's reader lags behind (a pipe to a busy shipper, a parent
 * that reads slowly). Writes are asynchronous, so nothing waits for the reader; unbounded, the
 * buffer grew with every request: a server logs ≈ 1 KB per small upload (command, stored, audit),
 * and 200,000 uploads into a slow pipe took its RSS to 626–714 MiB, and its stop waited minutes
 * for the reader to take the backlog (issue 17). Beyond this the newest lines are dropped, and
 * counted in a warning once there is room again.
 */
export const MAX_BUFFERED_LOG_BYTES = 4 * 1024 * 1024;

/** How often (at most) a warning tells how many log lines were dropped. */
const DROP_REPORT_MS = 1000;

/** Set once the process is on its way out: past it, a full stdout is no longer waited for. */
let giveUpAt: number | undefined;

/**
 * The process is exiting: lines stdout cannot take within `ms` are lost. Pino flushes an async
 * destination synchronously at exit, retrying a full pipe every 100 ms for as long as it stays
 * full: a stopped server whose stdout nobody read never ended (issue 17).
 */
export const giveUpOnLogReaderAfter = (ms: number): void => {
  giveUpAt = Date.now() + ms;
};

const boundedStdout = (): pino.DestinationStream => {
  const destination = pino.destination({
    dest: 1,
    sync: false,
    maxLength: MAX_BUFFERED_LOG_BYTES,
    retryEAGAIN: () => giveUpAt === undefined || Date.now() < giveUpAt,
  });
  // Refusing the retry makes the exit flush throw EAGAIN; what it could not write is given up.
  const flushSync = destination.flushSync.bind(destination);
  destination.flushSync = () => {
    try {
      flushSync();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || giveUpAt === undefined) throw err;
    }
  };
  let dropped = 0;
  const report = () => {
    const lines = dropped;
    dropped = 0;
    // Written straight to the destination: it may be dropped too, and is then counted again.
    destination.write(`${JSON.stringify({ level: 40, time: Date.now(), name: 'rxfer', dropped: lines, msg: `${lines} log lines dropped: stdout was not read fast enough` })}\n`);
  };
  destination.on('drop', () => {
    if (dropped++ === 0) setTimeout(report, DROP_REPORT_MS).unref();
  });
  return destination;
};
