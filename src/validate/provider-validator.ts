import type { Logger } from 'pino';
import { AppError, errorMessage } from '../errors.ts';
import type { ProviderCheck, TranscriptionProvider } from '../transcribe/types.ts';

export interface ProviderValidatorOptions {
  provider: Pick<TranscriptionProvider, 'name' | 'check'>;
  /** The name logs and refusals give it: the backend's. @default provider.name */
  label?: string;
  logger: Logger;
  /** Milliseconds clock. @default Date.now */
  now?: () => number;
  /** How long an ok/degraded answer is reused. @default 300000 (5 min) */
  okTtlMs?: number;
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
}

/** Codes a client can act on are passed through; every other failure is "unavailable, retry later". */
const PASSED_THROUGH = new Set(['PROVIDER_AUTH', 'PROVIDER_QUOTA']);

export function createProviderValidator(options: ProviderValidatorOptions): ProviderValidator {
  const { provider, logger } = options;
  const label = options.label ?? provider.name;
  const now = options.now ?? Date.now;
  const okTtlMs = options.okTtlMs ?? 300_000;
  const failTtlMs = options.failTtlMs ?? 30_000;
  const checkTimeoutMs = options.checkTimeoutMs ?? 10_000;
  for (const [name, value] of Object.entries({ okTtlMs, failTtlMs, checkTimeoutMs })) {
    if (!(value >= 0) || !Number.isFinite(value))
      throw new TypeError(`${name} must be a finite number >= 0, got ${value}`);
  }
  let last: ProviderStatus | null = null;
  let inflight: Promise<ProviderStatus> | null = null;

  function fresh(status: ProviderStatus | null): status is ProviderStatus {
    if (status === null) return false;
    const ttl = status.status === 'down' ? failTtlMs : okTtlMs;
    return now() - status.checkedAt < ttl;
  }

  async function ask(): Promise<ProviderCheck> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ProviderCheck>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve({ status: 'down', detail: `check timed out after ${checkTimeoutMs}ms`, code: 'PROVIDER_UNAVAILABLE' });
      }, checkTimeoutMs);
    });
    try {
      // Raced, not only signalled: a provider that ignores the signal must not hold up uploads.
      return await Promise.race([provider.check(controller.signal), timeout]);
    } catch (err) {
      return { status: 'down', detail: `check failed: ${errorMessage(err)}`, code: 'PROVIDER_UNAVAILABLE' };
    } finally {
      clearTimeout(timer);
    }
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
        return status;
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  }

  async function current(): Promise<{ status: ProviderStatus; cached: boolean }> {
    if (fresh(last)) return { status: last, cached: true };
    return { status: await refresh(), cached: false };
  }

  return {
    current: async () => (await current()).status,
    status: () => last,
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
