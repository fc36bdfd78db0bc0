import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.ts';

/**
 * Where a secret could reach a log line: a request's Authorization header (however the object holding it is
 * named), config fields holding keys, and the arguments of a failed Redis command (for AUTH and HELLO, the
 * password). pino-redact replaces them before the line is written; errors also go through serializeError.
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
  'command.args',
  '*.command.args',
  '*.*.command.args',
];

const REDACTED = '[redacted]';
/** Deeper than this, an error's properties are not written at all: they could not be checked. */
const ERROR_MAX_DEPTH = 8;
const SERIALIZED_ERROR_PROTO: unknown = Object.getPrototypeOf(pino.stdSerializers.err(new Error('probe')));

/**
 * An error as pino's standard serializer writes it, with the `args` of every `command` in it (at any depth:
 * nested errors, causes, aggregated errors, plain objects) replaced. ioredis copies the failed command onto its
 * ReplyError, and for AUTH or HELLO its arguments are the user and password: a library error must not be able to
 * put them in the log, whatever logs it. The logged error itself is not changed.
 */
export function serializeError(err: unknown): unknown {
  return scrubbed(pino.stdSerializers.err(err as Error), 0, new WeakSet());
}

/**
 * A copy of what JSON output would show of `value`, without command arguments. Only plain objects, arrays,
 * errors and their serialized forms are walked: other objects (dates, buffers) are left as they are.
 */
function scrubbed(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  const proto: unknown = Object.getPrototypeOf(value);
  const walked =
    Array.isArray(value) ||
    proto === Object.prototype ||
    proto === null ||
    proto === SERIALIZED_ERROR_PROTO ||
    value instanceof Error;
  if (!walked) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= ERROR_MAX_DEPTH) return '[too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v: unknown) => scrubbed(v, depth + 1, seen));
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] =
        key === 'command' && v !== null && typeof v === 'object'
          ? { ...scrubbedRecord(v, depth + 1, seen), args: REDACTED }
          : scrubbed(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

function scrubbedRecord(value: object, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const copy = scrubbed({ ...value }, depth, seen);
  return copy !== null && typeof copy === 'object' ? (copy as Record<string, unknown>) : {};
}

/** The service's logger; `destination` is for tests that read what was logged. */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  const options = {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers: { err: serializeError },
  };
  if (destination) return pino(options, destination);
  // Pretty output is for people at a terminal; anything else (files, collectors) gets one JSON object a line.
  if (process.stdout.isTTY && prettyAvailable())
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } });
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
