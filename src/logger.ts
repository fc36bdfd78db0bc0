import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.ts';

/**
 * Where a secret could reach a log line: a request's Authorization header (however the object holding it is
 * named), and config fields holding keys. pino-redact replaces them before the line is written.
 */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.apiKey',
  '*.OPENAI_API_KEY',
  '*.API_KEYS',
  '*.secret',
  '*.WEBHOOK_SECRET',
];

/** The service's logger; `destination` is for tests that read what was logged. */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  // Pretty output is for people at a terminal; anything else (files, collectors) gets one JSON object a line.
  if (process.stdout.isTTY && prettyAvailable()) return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } });
  // Asynchronous writes: lines logged while a write is under way go out together in the next one, instead of one
  // blocking write(2) per line (under load, most of a poll's logging cost). pino flushes it on exit.
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

/** pino-pretty is a dev dependency: a production image run with a TTY (`docker run -it`) must still start. */
function prettyAvailable(): boolean {
  try {
    import.meta.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
