import type { Logger } from 'pino';
import { AppError, errorMessage } from '../errors.ts';
import { monotonicClock, type Clock } from '../transcribe/backoff.ts';
import { atDeadline, type DeadlineTimer } from '../transcribe/deadline-timer.ts';
import type { ProviderCheck, TranscriptionProvider } from '../transcribe/types.ts';

export interface ProviderValidatorOptions {
  provider: Pick<TranscriptionProvider, 'name' | 'check'>;
  /** The name logs and refusals give it: the backend's. @default provider.name */
  label?: string;
  logger: Logger;
  /**
   * The clock of the TTLs, the check timeout and the background refresh: this process's own durations, which a wall
   * clock step must not stretch (a down answer reused for the step's length). @default monotonicClock
   */
  clock?: Clock;
  /** How long an ok/degraded answer is reused. @default 300000 (5 min) */
  okTtlMs?: number;
  /**
   * An ok/degraded answer that was used (check, current) is asked again in the background this long before it
   * expires, so uploads keep finding a fresh answer; one nobody used is left to expire (an idle service does not
   * poll the provider). @default min(30000, okTtlMs / 2)
   */
  refreshAheadMs?: number;
  /** How long a down answer is reused: short, so recovery is noticed soon. @default 30000 */
  failTtlMs?: number;
  /** A check that takes longer counts as down. @default 10000 */
  checkTimeoutMs?: number;
}

export interface ProviderStatus extends ProviderCheck {
  /** When the answer was obtained (the injected clock's milliseconds). */
  checkedAt: number;
}

export interface ProviderCheckResult {
  status: ProviderStatus;
  /** True when no provider call was made for this check. */
  cached: boolean;
  ms: number;
}

export interface ProviderValidator {
  /** The cached or a fresh answer; never throws (for /health/ready). */
  current(): Promise<ProviderStatus>;
  /** Throws 502 PROVIDER_AUTH / PROVIDER_QUOTA or 503 PROVIDER_UNAVAILABLE when the provider is down. */
  check(): Promise<ProviderCheckResult>;
  /** The last answer without calling the provider, or null before the first. */
  status(): ProviderStatus | null;
  /**
   * Starts a check in the background unless a fresh answer is cached or one is under way (at service start and
   * when an upload begins, so the answer is in by the time the body is); never throws, does not wait.
   */
  warm(): void;
  /** Cancels the background refresh (service close); check and current still work. */
  stop(): void;
}

/** Codes a client can act on are passed through; every other failure is "unavailable, retry later". */
const PASSED_THROUGH = new Set(['PROVIDER_AUTH', 'PROVIDER_QUOTA']);

export function createProviderValidator(options: ProviderValidatorOptions): ProviderValidator {
  const { provider, logger } = options;
  const label = options.label ?? provider.name;
  const clock = options.clock ?? monotonicClock;
  const now = () => clock.now();
  const okTtlMs = options.okTtlMs ?? 300_000;
  const failTtlMs = options.failTtlMs ?? 30_000;
  const checkTimeoutMs = options.checkTimeoutMs ?? 10_000;
  const refreshAheadMs = options.refreshAheadMs ?? Math.min(30_000, okTtlMs / 2);
  for (const [name, value] of Object.entries({ okTtlMs, failTtlMs, checkTimeoutMs, refreshAheadMs })) {
    if (!(value >= 0) || !Number.isFinite(value))
      throw new TypeError(`${name} must be a finite number >= 0, got ${value}`);
  }
  let last: ProviderStatus | null = null;
  let inflight: Promise<ProviderStatus> | null = null;
  /** Whether `last` was used since it was obtained: only then is it refreshed before it expires. */
  let used = false;
  let refreshTimer: DeadlineTimer | null = null;
  let stopped = false;

  function fresh(status: ProviderStatus | null): status is ProviderStatus {
    if (status === null) return false;
    const ttl = status.status === 'down' ? failTtlMs : okTtlMs;
    return now() - status.checkedAt < ttl;
  }

  async function ask(): Promise<ProviderCheck> {
    const controller = new AbortController();
    let timer: DeadlineTimer | undefined;
    const timeout = new Promise<ProviderCheck>((resolve) => {
      timer = atDeadline(clock, now() + checkTimeoutMs, () => {
        controller.abort();
        resolve({ status: 'down', detail: `check timed out after ${checkTimeoutMs}ms`, code: 'PROVIDER_UNAVAILABLE' });
      });
    });
    try {
      // Raced, not only signalled: a provider that ignores the signal must not hold up uploads.
      return await Promise.race([provider.check(controller.signal), timeout]);
    } catch (err) {
      return { status: 'down', detail: `check failed: ${errorMessage(err)}`, code: 'PROVIDER_UNAVAILABLE' };
    } finally {
      timer?.cancel();
    }
  }

  /**
   * The one owner of the background refresh: armed for each ok/degraded answer, it asks again refreshAheadMs
   * before that answer expires if it was used meanwhile. A late firing finds the answer expired and the next
   * check asks in the foreground, as without it; an early one is re-armed by atDeadline.
   */
  function armRefresh(status: ProviderStatus): void {
    refreshTimer?.cancel();
    refreshTimer = null;
    if (stopped || status.status === 'down') return;
    refreshTimer = atDeadline(clock, status.checkedAt + Math.max(0, okTtlMs - refreshAheadMs), () => {
      refreshTimer = null;
      if (used && last === status) void refresh();
    });
  }

  function refresh(): Promise<ProviderStatus> {
    inflight ??= ask()
      .then((answer) => {
        const status: ProviderStatus = { ...answer, checkedAt: now() };
        if (last === null || last.status !== status.status) {
          const log = status.status === 'ok' ? logger.info.bind(logger) : logger.warn.bind(logger);
          log({ provider: label, status: status.status, detail: status.detail, code: status.code }, 'provider status');
        }
        last = status;
        used = false;
        armRefresh(status);
        return status;
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  }

  async function current(): Promise<{ status: ProviderStatus; cached: boolean }> {
    if (fresh(last)) {
      used = true;
      return { status: last, cached: true };
    }
    const status = await refresh();
    used = true;
    return { status, cached: false };
  }

  return {
    current: async () => (await current()).status,
    status: () => last,
    warm() {
      if (!fresh(last)) void refresh();
    },
    stop() {
      stopped = true;
      refreshTimer?.cancel();
      refreshTimer = null;
    },
    async check() {
      const started = performance.now();
      const { status, cached } = await current();
      if (status.status === 'down') {
        const code =
          status.code !== undefined && PASSED_THROUGH.has(status.code) ? status.code : 'PROVIDER_UNAVAILABLE';
        const message =
          code === 'PROVIDER_AUTH'
            ? "The transcription provider rejects this server's credentials; the operator must fix the API key."
            : code === 'PROVIDER_QUOTA'
              ? 'The transcription provider account is out of quota; the operator must top it up.'
              : 'The transcription provider is unavailable; retry later.';
        const retryAfterS = Math.max(1, Math.ceil((status.checkedAt + failTtlMs - now()) / 1000));
        throw new AppError(code, message, {
          details: { provider: label },
          ...(code === 'PROVIDER_UNAVAILABLE' ? { retryAfterS, retryable: true } : {}),
        });
      }
      return { status, cached, ms: performance.now() - started };
    },
  };
}
