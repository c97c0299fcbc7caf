import pino, { Logger } from 'pino';

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
    destination: 1,
    sync: true,
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
  return pino(options, format === 'pretty' ? prettyStream() : pino.destination({ dest: 1, sync: false }));
};
