import type { HealthReason } from '../resources/component-check.ts';
import { bearerMatches, digest } from './bearer.ts';
import type { HealthReport, QueueLoad } from './health-report.ts';

/**
 * Who reads /health: `operator` (the metrics token, or, without METRICS_TOKEN, a client open mode serves) sees
 * every detail and the configuration; `tenant` (a valid API key, or a client open mode serves) sees the statuses,
 * the reason codes and the queue's figures, which name no host, path, version or dependency's words; `public`
 * sees the statuses.
 */
export type HealthViewer = 'public' | 'tenant' | 'operator';

export interface HealthCredential {
  /** The request's Authorization header. */
  authorization: string | undefined;
  /** The name of the request's valid API key (the auth plugin sets it on public routes too), or null. */
  keyName: string | null;
  /**
   * Whether open mode serves the client (no API keys, and OPEN_MODE_CLIENTS admits it: the auth plugin decides, on
   * public routes too): every /v1 route is then the client's anyway.
   */
  openAccess: boolean;
}

/**
 * The one place that decides what a caller of /health may read. The metrics token is the operator's credential;
 * an API key is a tenant's, whatever it is sent with (config refuses a METRICS_TOKEN equal to an API key).
 */
export function healthViewerFor(config: {
  metricsToken: string | undefined;
}): (credential: HealthCredential) => HealthViewer {
  const token = config.metricsToken === undefined ? null : digest(config.metricsToken);
  return ({ authorization, keyName, openAccess }) => {
    if (token === null ? openAccess : bearerMatches(authorization, token)) return 'operator';
    // A client open mode serves may use every /v1 route, so it is a tenant at least.
    return keyName !== null || openAccess ? 'tenant' : 'public';
  };
}

interface TenantComponent {
  status: HealthReport['status'];
  reason?: HealthReason;
  load?: QueueLoad;
}

export type HealthView =
  | { view: 'public'; status: HealthReport['status']; components: Record<string, Pick<TenantComponent, 'status'>> }
  | { view: 'tenant'; status: HealthReport['status']; components: Record<string, TenantComponent> }
  | ({ view: 'operator' } & HealthReport);

/**
 * The report as `viewer` may read it. A tenant's and the public's components are built field by field from the
 * typed ones (a status, a reason code, numbers), never copied, so a field added to the report later stays the
 * operator's until it is added here.
 */
export function healthView(report: HealthReport, viewer: HealthViewer): HealthView {
  const pick = <T>(shown: (c: HealthReport['components'][string]) => T): Record<string, T> =>
    Object.fromEntries(Object.entries(report.components).map(([name, c]) => [name, shown(c)]));
  switch (viewer) {
    case 'operator':
      return { view: 'operator', ...report };
    case 'tenant':
      return {
        view: 'tenant',
        status: report.status,
        components: pick(({ status, reason, load }) => ({
          status,
          ...(reason ? { reason } : {}),
          ...(load ? { load: { ...load } } : {}),
        })),
      };
    case 'public':
      return { view: 'public', status: report.status, components: pick(({ status }) => ({ status })) };
  }
}
