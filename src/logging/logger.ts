import pino, { Logger } from 'pino';

/**
 * Structured logs (one JSON object a line, on stdout) so they can be shipped and queried; the
 * human sentence of each line is in `msg` ("Server listening on 127.0.0.1 port 9000").
 */
export const createLogger = (level: string, destination?: pino.DestinationStream): Logger =>
  pino({ name: 'rxfer', level }, destination ?? pino.destination({ dest: 1, sync: false }));
