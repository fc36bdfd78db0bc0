import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { isRunLost } from '../../src/jobs/run-fence.ts';
import { QueueLease } from '../../src/scale/queue-lease.ts';

const logger = pino({ level: 'silent' });
const LOCK_MS = 4_000;

/** A lease on a clock the test moves, with extensions it answers one by one. */
function lease() {
  let now = 1_000;
  const answers: Array<(ok: boolean | Error) => void> = [];
  const l = new QueueLease({
    lockMs: LOCK_MS,
    logger,
    clock: () => now,
    extend: () =>
      new Promise<boolean>((resolve, reject) => answers.push((ok) => (ok instanceof Error ? reject(ok) : resolve(ok)))),
  });
  const answer = async (ok: boolean | Error) => {
    answers.shift()?.(ok);
    await new Promise((r) => setImmediate(r));
  };
  return { l, answer, move: (ms: number) => (now += ms), pending: () => answers.length };
}

describe('QueueLease: a hold on a job through its queue lock, checked on its own clock', () => {
  it('holds from the first extension until the time it was sent + the lock duration, not from when it was answered', async () => {
    const { l, answer, move } = lease();
    const started = l.start();
    // The answer comes late (a slow Redis, a frozen process): the lock was set no earlier than the send.
    move(1_500);
    await answer(true);
    expect(await started).toBe(true);
    move(LOCK_MS - 1_500 - 1);
    expect(l.held()).toBe(true);
    move(1);
    // Past it, unrenewed: lost at once, with nothing asked of Redis.
    expect(l.held()).toBe(false);
    expect(l.lost.aborted).toBe(true);
    expect(isRunLost(l.lost.reason)).toBe(true);
    // Lost stays lost: a late successful extension does not bring it back.
    expect(l.held()).toBe(false);
    l.end();
  });

  it('does not start without a first extension: refused (another worker has the job) or unanswered', async () => {
    for (const outcome of [false, new Error('connection lost')]) {
      const { l, answer } = lease();
      expect(l.held()).toBe(false);
      const started = l.start();
      await answer(outcome);
      expect(await started).toBe(false);
      expect(l.lost.aborted).toBe(true);
      l.end();
    }
  });

  it('wakes past its end after a freeze: held() is false before any timer or answer of Redis has run', async () => {
    const { l, answer, move } = lease();
    const started = l.start();
    await answer(true);
    await started;
    // Frozen (SIGSTOP) for twice the lock: the first thing the woken run asks is whether it may send.
    move(2 * LOCK_MS);
    expect(l.held()).toBe(false);
    l.end();
  });

  it('extends every quarter of the lock: an unanswered extension keeps the known end, a refused one ends the hold', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { l, answer, move, pending } = lease();
      const started = l.start();
      await answer(true);
      await started;
      move(LOCK_MS / 4);
      vi.advanceTimersByTime(LOCK_MS / 4);
      expect(pending()).toBe(1);
      // Redis did not answer: the lock may still be ours until the end already known (sent at 1 000 + LOCK_MS).
      await answer(new Error('connection lost'));
      expect(l.held()).toBe(true);
      move(LOCK_MS / 4);
      vi.advanceTimersByTime(LOCK_MS / 4);
      await answer(false);
      expect(l.lost.aborted).toBe(true);
      expect(l.held()).toBe(false);
      expect(l.lost.reason).toMatchObject({ name: 'RunLostError' });
      // Ended: no more extensions.
      vi.advanceTimersByTime(LOCK_MS);
      expect(pending()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
