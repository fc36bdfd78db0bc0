import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { within } from './bounded-close.ts';

/** A command asked for a request in progress waits at most this long for its answer (a hung Redis). */
const COMMAND_TIMEOUT_MS = 1_000;
/** At start, how long to wait for the connection before serving (refusing uploads) without it. */
const READY_WAIT_MS = 5_000;

/**
 * The connection for what a request waits on (upload slots and rate, circuit state): unlike BullMQ's, whose
 * commands wait through a Redis restart, these fail at once while Redis is not connected and after a second
 * without an answer, so a request is answered (refused) instead of held. A failed command is never sent again
 * later: a count that was refused must not be counted once Redis is back.
 */
export async function connectFailFast(url: string, logger: Logger): Promise<Redis> {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
  });
  client.on('error', (err) => logger.warn({ err }, 'redis error (shared limits)'));
  // Through connection errors: the client keeps trying, and this waits for it, up to READY_WAIT_MS.
  const ready = new Promise<void>((resolve) => client.once('ready', () => resolve()));
  if ((await within(ready, READY_WAIT_MS)) === 'timeout') {
    logger.warn({ waitedMs: READY_WAIT_MS }, 'redis not connected yet: uploads are refused until it is');
  }
  return client;
}

/**
 * What a request gets while the limits shared through Redis cannot be read: 503 SERVER_BUSY with Retry-After.
 * Refused rather than let through (fail-closed): a per-key bound that cannot be checked is not enforced, and this
 * host's /health/ready is `down` meanwhile, so a load balancer sends the uploads elsewhere.
 */
export function redisUnavailable(retryAfterS: number, err: unknown, logger: Logger): AppError {
  logger.warn({ err }, 'redis did not answer for a shared limit');
  return new AppError('SERVER_BUSY', 'The service cannot check its shared limits right now; retry shortly.', {
    retryAfterS,
    retryable: true,
    details: { resource: 'redis' },
  });
}
