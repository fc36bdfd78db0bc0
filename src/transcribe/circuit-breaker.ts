import type { Logger } from 'pino';
import { AppError, type ErrorCode } from '../errors.ts';
import { systemClock, type Clock } from './backoff.ts';
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
  /** When the next half-open probe may go (epoch ms), while open. */
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
  clock?: Clock;
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
    clock = systemClock,
  } = options;
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
  let retryAt: number | null = null;
  let probeInFlight = false;
  /** Owns the wait of parked callers for the cool-down: it re-arms until the clock has reached retryAt. */
  let coolDown: DeadlineTimer | undefined;
  const waiters: Waiter[] = [];

  const isFatal = () => state === 'open' && code !== null && FATAL_CODES.has(code);

  const open = (why: string, openCode: ErrorCode) => {
    const wasFatal = isFatal();
    // A fatal reason is not downgraded by a plain fault that arrives while it is open.
    if (wasFatal && !FATAL_CODES.has(openCode)) return;
    state = 'open';
    reason = why;
    code = openCode;
    openedAt = clock.now();
    retryAt = openedAt + (FATAL_CODES.has(openCode) ? fatalCoolDownMs : coolDownMs);
    probeInFlight = false;
    coolDown?.cancel();
    coolDown = atDeadline(clock, retryAt, pump);
    log.warn({ reason: why, code: openCode, failures, retryAt: new Date(retryAt).toISOString() }, 'circuit opened');
    pump();
  };

  const close = () => {
    coolDown?.cancel();
    coolDown = undefined;
    if (state !== 'closed') log.info({ after: reason }, 'circuit closed');
    state = 'closed';
    reason = null;
    code = null;
    openedAt = null;
    retryAt = null;
    failures = 0;
    probeInFlight = false;
    pump();
  };

  const makePermit = (probe: boolean): CircuitPermit => {
    if (probe) probeInFlight = true;
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
        if (probe) close();
        else if (state === 'closed') failures = 0;
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
    new CircuitOpenError(name, code ?? 'PROVIDER_UNAVAILABLE', reason ?? 'circuit open', retryAt ?? clock.now());

  /** Move waiters along after any state change. */
  function pump(): void {
    if (state === 'open' && retryAt !== null && clock.now() >= retryAt) {
      state = 'half-open';
      log.info({ reason }, 'circuit half-open: letting one probe through');
    }
    if (state === 'closed') {
      for (const w of waiters.splice(0)) w.resolve(makePermit(false));
    } else if (isFatal()) {
      const err = rejection();
      for (const w of waiters.splice(0)) w.reject(err);
    } else if (state === 'half-open' && !probeInFlight) {
      waiters.shift()?.resolve(makePermit(true));
    }
  }

  return {
    admit(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      pump();
      if (state === 'closed') return Promise.resolve(makePermit(false));
      if (isFatal()) return Promise.reject(rejection());
      if (state === 'half-open' && !probeInFlight) return Promise.resolve(makePermit(true));
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
      if (state === 'open' && retryAt !== null && clock.now() >= retryAt) pump();
      return { state, reason, code, consecutiveFailures: failures, openedAt, retryAt, waiting: waiters.length };
    },
  };
}
