/** A component's state in the readiness report; the worst component's is the service's. */
export const COMPONENT_STATUSES = ['ok', 'degraded', 'down'] as const;
export type ComponentStatus = (typeof COMPONENT_STATUSES)[number];

/**
 * Why a component is not ok (or, for job_dirs, why uploads are refused while it is): a stable code that names no
 * host, path, version or dependency's own words, so the report may show it to a tenant's key as well.
 */
export const HEALTH_REASONS = [
  'binary_unavailable',
  'provider_auth',
  'provider_quota',
  'provider_unavailable',
  'provider_degraded',
  'circuit_open',
  'circuit_half_open',
  'unreachable',
  'disk_full',
  'disk_low',
  'memory_low',
  'job_dirs_full',
] as const;
export type HealthReason = (typeof HEALTH_REASONS)[number];

/**
 * One component of the readiness report, as the part that owns it checks it (a binary, the disk, the queue's
 * Redis). The detail may name paths, hosts and versions: the HTTP layer shows it only to the operator.
 */
export interface ComponentCheck {
  status: ComponentStatus;
  detail: string;
  reason?: HealthReason;
}
