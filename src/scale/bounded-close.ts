import type { Logger } from 'pino';

/** How long a BullMQ queue or worker may take to close before its connections are cut. */
export const CLOSE_WITHIN_MS = 5_000;

/**
 * Closes a BullMQ queue or worker, but not for ever: after a Redis restart its blocking connection can sit in a
 * reconnect that close() waits on without end, and shutdown (SIGTERM, a test's afterAll) would hang with it. Past
 * `withinMs` the connections are cut (`disconnect()`); nothing is lost by that, since every job state is in the
 * store and the queue lives in Redis.
 */
export async function closeWithin(
  what: string,
  closable: { close(): Promise<void>; disconnect(): Promise<void> },
  log: Logger,
  withinMs = CLOSE_WITHIN_MS,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), withinMs);
  });
  try {
    const outcome = await Promise.race([closable.close().then(() => 'closed' as const), timedOut]);
    if (outcome === 'timeout') {
      log.warn({ what, withinMs }, 'a Redis connection did not close in time; cutting it');
      await closable.disconnect().catch((err: unknown) => log.warn({ err, what }, 'could not cut the connection'));
    }
  } finally {
    clearTimeout(timer);
  }
}
