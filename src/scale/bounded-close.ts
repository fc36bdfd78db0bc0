import type { Logger } from 'pino';

/** How long a BullMQ queue or worker may take to close before its connections are cut. */
export const CLOSE_WITHIN_MS = 5_000;

/** 'done' once `work` resolves, 'timeout' after `ms` if it has not (its rejection passes through); no timer left behind. */
export async function within(work: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([work.then(() => 'done' as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes a BullMQ queue or worker, but not for ever: after a Redis restart its blocking connection can sit in a
 * reconnect that close() waits on without end, and shutdown (SIGTERM, a test's afterAll) would hang with it. Past
 * `withinMs` the connections are cut (`disconnect()`); nothing is lost by that, since every job state is in the
 * store and the queue lives in Redis. Cutting is bounded too: ioredis' disconnect() of a client that is between two
 * reconnect attempts clears the attempt but never emits 'end', which BullMQ's disconnect() waits for; once the
 * attempt is cleared nothing of the client keeps the process alive, so giving up the wait loses nothing.
 */
export async function closeWithin(
  what: string,
  closable: { close(): Promise<void>; disconnect(): Promise<void> },
  log: Logger,
  withinMs = CLOSE_WITHIN_MS,
): Promise<void> {
  if ((await within(closable.close(), withinMs)) === 'done') return;
  log.warn({ what, withinMs }, 'a Redis connection did not close in time; cutting it');
  const cut = closable.disconnect().catch((err: unknown) => log.warn({ err, what }, 'could not cut the connection'));
  if ((await within(cut, withinMs)) === 'timeout') {
    log.warn({ what, withinMs }, 'a cut Redis connection never reported its end; leaving it');
  }
}
