import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError, type ErrorCode } from '../errors.ts';
import { monotonicClock, wallClockOf, type Clock } from './backoff.ts';
import { PROBE_HOLD_MS, type CircuitOpening, type SharedCircuit } from './circuit-share.ts';
import { atDeadline, type DeadlineTimer } from './deadline-timer.ts';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** Codes for which no request can succeed until someone fixes the account: waiting callers are turned away. */
const FATAL_CODES: ReadonlySet<ErrorCode> = new Set(['PROVIDER_AUTH', 'PROVIDER_QUOTA']);

export interface CircuitSnapshot {
  state: CircuitState;
  reason: string | null;
  /** PROVIDER_AUTH / PROVIDER_QUOTA when a fatal answer opened it, PROVIDER_UNAVAILABLE for repeated failures. */
  code: ErrorCode | null;
  consecutiveFailures: number;
  openedAt: number | null;
  /** When the next half-open probe may go (epoch ms, wall clock), while open. */
  retryAt: number | null;
  waiting: number;
}

export interface FailureInfo {
  reason: string;
  /** Open at once, whatever the count (a fail-job decision with openCircuit). */
  open?: boolean;
  code?: ErrorCode;
}

/** One admitted call. Settle it exactly once; later calls are ignored. */
export interface CircuitPermit {
  /** Whether this call is the half-open probe whose outcome closes or re-opens the circuit. */
  readonly probe: boolean;
  succeed(): void;
  fail(info: FailureInfo): void;
  /** The call ended without saying anything about the provider (cancelled, rejected input). */
  release(): void;
}

export interface CircuitBreaker {
  /** Resolves when a call may go; waits while open; rejects with CircuitOpenError while open for a fatal code. */
  admit(signal?: AbortSignal): Promise<CircuitPermit>;
  snapshot(): CircuitSnapshot;
}

export class CircuitOpenError extends AppError {
  constructor(provider: string, code: ErrorCode, reason: string, retryAt: number) {
    super(code, `Provider ${provider} is unavailable: ${reason}`, {
      details: { provider, retryAt: new Date(retryAt).toISOString() },
      retryable: false,
    });
    this.name = 'CircuitOpenError';
  }
}

export interface CircuitBreakerOptions {
  /** Provider name, for logs and errors. */
  name: string;
  logger: Logger;
  /** Consecutive provider faults that open the circuit. @default 5 */
  failureThreshold?: number;
  /** Wait before a probe after repeated faults. @default 30000 */
  coolDownMs?: number;
  /** Wait before a probe after an auth or quota answer. @default 300000 */
  fatalCoolDownMs?: number;
  /**
   * Measures the cool-down and the wait for another host's probe: this process's own waits, which a wall clock
   * step must not stretch or cut short. @default monotonicClock
   */
  clock?: Clock;
  /**
   * Dates other hosts read (an open's openedAt and retryAt, a close's time) and the ones reported.
   * @default the `clock` option when one is given (a test's single clock), else systemClock
   */
  wallClock?: Clock;
  /** Scale-out: the state other hosts share; without it the breaker is this process's alone. */
  shared?: SharedCircuit | null;
}

interface Waiter {
  resolve(permit: CircuitPermit): void;
  reject(err: unknown): void;
  detach(): void;
}

export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const {
    name,
    logger,
    failureThreshold = 5,
    coolDownMs = 30_000,
    fatalCoolDownMs = 300_000,
    clock = monotonicClock,
    shared = null,
  } = options;
  const wall = wallClockOf(options);
  for (const [key, value] of Object.entries({ failureThreshold, coolDownMs, fatalCoolDownMs })) {
    if (!Number.isFinite(value) || value < (key === 'failureThreshold' ? 1 : 0)) {
      throw new TypeError(`circuit breaker ${key} must be a positive number, got ${value}`);
    }
  }
  const log = logger.child({ circuit: name });
  let state: CircuitState = 'closed';
  let reason: string | null = null;
  let code: ErrorCode | null = null;
  let failures = 0;
  let openedAt: number | null = null;
  /** The open period's id (CircuitOpening.id): what a shared probe claim and close are for. */
  let period: string | null = null;
  let retryAt: number | null = null;
  /** retryAt on `clock`: when the cool-down ends for this process, whatever the wall clock does meanwhile. */
  let dueAt: number | null = null;
  let probeInFlight = false;
  /** With a shared circuit: whether this process has the probe of every host for this half-open (null: not asked). */
  let probeRight: 'asking' | 'mine' | 'theirs' | null = null;
  /** Owns asking again once another host's claim has run out without news from it. */
  let probeRetry: DeadlineTimer | undefined;
  /** Owns the wait of parked callers for the cool-down: it re-arms until the clock has reached retryAt. */
  let coolDown: DeadlineTimer | undefined;
  const waiters: Waiter[] = [];

  const isFatal = () => state === 'open' && code !== null && FATAL_CODES.has(code);

  /**
   * Enters `opening` (this host's evidence, or another host's), whose cool-down has `waitMs` left; false when a
   * fatal open already holds.
   */
  const enter = (opening: CircuitOpening, waitMs: number, from: 'this host' | 'another host'): boolean => {
    // A fatal reason is not downgraded by a plain fault that arrives while it is open.
    if (isFatal() && !FATAL_CODES.has(opening.code)) return false;
    state = 'open';
    ({ id: period, reason, code, openedAt, retryAt } = opening);
    dueAt = clock.now() + waitMs;
    probeInFlight = false;
    resetProbeRight();
    coolDown?.cancel();
    coolDown = atDeadline(clock, dueAt, pump);
    log.warn(
      { reason: opening.reason, code: opening.code, failures, from, retryAt: new Date(opening.retryAt).toISOString() },
      'circuit opened',
    );
    pump();
    return true;
  };

  const coolDownFor = (openCode: ErrorCode) => (FATAL_CODES.has(openCode) ? fatalCoolDownMs : coolDownMs);

  const open = (why: string, openCode: ErrorCode) => {
    const now = wall.now();
    const waitMs = coolDownFor(openCode);
    const opening = { id: randomUUID(), code: openCode, reason: why, openedAt: now, retryAt: now + waitMs };
    if (enter(opening, waitMs, 'this host')) shared?.publish({ open: opening });
  };

  const close = () => {
    resetProbeRight();
    coolDown?.cancel();
    coolDown = undefined;
    if (state !== 'closed') log.info({ after: reason }, 'circuit closed');
    state = 'closed';
    reason = null;
    code = null;
    openedAt = null;
    period = null;
    retryAt = null;
    dueAt = null;
    failures = 0;
    probeInFlight = false;
    pump();
  };

  const makePermit = (probe: boolean): CircuitPermit => {
    if (probe) probeInFlight = true;
    /** The open period a probe is for: its success ends that one in the shared state, not a later one. */
    const probedPeriod = probe ? period : null;
    let settled = false;
    const once = (fn: () => void) => () => {
      if (settled) return;
      settled = true;
      fn();
    };
    return {
      probe,
      succeed: once(() => {
        // Only the probe's success is fresh evidence; a call admitted before the circuit opened is not.
        if (probe) {
          close();
          if (probedPeriod !== null) shared?.publish({ closedAt: wall.now(), id: probedPeriod });
        } else if (state === 'closed') failures = 0;
      }),
      fail: (info: FailureInfo) =>
        once(() => {
          failures += 1;
          if (probe) probeInFlight = false;
          if (info.open) open(info.reason, info.code ?? 'PROVIDER_UNAVAILABLE');
          else if (probe || (state === 'closed' && failures >= failureThreshold))
            open(info.reason, 'PROVIDER_UNAVAILABLE');
        })(),
      release: once(() => {
        if (!probe) return;
        probeInFlight = false;
        pump();
      }),
    };
  };

  const rejection = () =>
    new CircuitOpenError(name, code ?? 'PROVIDER_UNAVAILABLE', reason ?? 'circuit open', retryAt ?? wall.now());

  function resetProbeRight(): void {
    probeRight = null;
    probeRetry?.cancel();
    probeRetry = undefined;
  }

  /**
   * Whether this process may send the half-open probe now: always on its own; with a shared circuit, once it has
   * claimed the probe of every host (asked here, answered later through pump). Another host's claim is waited
   * out: its probe's outcome arrives as a mirrored close or open, or the claim runs out and this one asks again.
   */
  function mayProbe(): boolean {
    // A half-open always has its open's period: the null check only narrows the type.
    if (!shared || probeRight === 'mine' || period === null) return true;
    if (probeRight !== null) return false;
    probeRight = 'asking';
    const claimed = period;
    void shared
      .claimProbe(claimed, PROBE_HOLD_MS)
      .catch(() => true)
      .then((won) => {
        if (state !== 'half-open' || period !== claimed) return;
        probeRight = won ? 'mine' : 'theirs';
        if (!won) {
          log.info('circuit half-open: another host sends the probe');
          probeRetry = atDeadline(clock, clock.now() + PROBE_HOLD_MS, () => {
            probeRight = null;
            pump();
          });
        }
        pump();
      });
    return false;
  }

  /** Move waiters along after any state change. */
  function pump(): void {
    if (state === 'open' && dueAt !== null && clock.now() >= dueAt) {
      state = 'half-open';
      log.info({ reason }, 'circuit half-open: letting one probe through');
    }
    if (state === 'closed') {
      for (const w of waiters.splice(0)) w.resolve(makePermit(false));
    } else if (isFatal()) {
      const err = rejection();
      for (const w of waiters.splice(0)) w.reject(err);
    } else if (state === 'half-open' && !probeInFlight && waiters.length > 0 && mayProbe()) {
      waiters.shift()?.resolve(makePermit(true));
    }
  }

  // Another host's open holds this one's callers too (a revoked key is revoked everywhere); its close, after a
  // probe that succeeded there, frees them. A close older than this breaker's open is not about that open. Its
  // retryAt is a wall date: what is left of it when it arrives is then waited out on this process's clock, but never
  // longer than this host's own cool-down for that code. Measured on this host's wall clock, a step back of S here
  // (or an opener whose clock runs S ahead, or any writer of the shared state) would hold every call S longer.
  shared?.follow({
    opened: (opening) => {
      const waitMs = Math.min(opening.retryAt - wall.now(), coolDownFor(opening.code));
      if (waitMs > 0) enter(opening, waitMs, 'another host');
    },
    closed: (closedAt) => {
      if (state !== 'closed' && openedAt !== null && openedAt <= closedAt) close();
    },
  });

  return {
    admit(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      pump();
      if (state === 'closed') return Promise.resolve(makePermit(false));
      if (isFatal()) return Promise.reject(rejection());
      if (state === 'half-open' && !probeInFlight && mayProbe()) return Promise.resolve(makePermit(true));
      return new Promise<CircuitPermit>((resolve, reject) => {
        const onAbort = () => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(signal?.reason);
        };
        const waiter: Waiter = {
          resolve: (p) => {
            waiter.detach();
            resolve(p);
          },
          reject: (e) => {
            waiter.detach();
            reject(e);
          },
          detach: () => signal?.removeEventListener('abort', onAbort),
        };
        waiters.push(waiter);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    snapshot() {
      if (state === 'open' && dueAt !== null && clock.now() >= dueAt) pump();
      return { state, reason, code, consecutiveFailures: failures, openedAt, retryAt, waiting: waiters.length };
    },
  };
}
