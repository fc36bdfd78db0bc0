import { Counter, type Registry } from 'prom-client';

export interface AuthMetrics {
  /** One credential that matched nothing where `check` checks one. */
  failed(check: string): void;
  /** One client address locked out, by the check whose failure reached the limit. */
  lockedOut(check: string): void;
}

/**
 * Failed credential checks and the lockouts they lead to (AUTH_FAILURES_PER_MINUTE), on the service's registry, by
 * where the credential was checked (`checks`: a few fixed names, never an address or a credential). Every series
 * exists at 0 from the start, so an alert's increase() sees the first failure.
 */
export function createAuthMetrics(registry: Registry, checks: readonly string[]): AuthMetrics {
  const registers = [registry];
  const failures = new Counter({
    name: 'chunkscribe_auth_failures_total',
    help: 'Credentials that matched nothing, by where they were checked: v1 (an API key), metrics (the metrics token), health (a bearer on /health).',
    labelNames: ['route_family'],
    registers,
  });
  const lockouts = new Counter({
    name: 'chunkscribe_auth_lockouts_total',
    help: 'Client addresses locked out for too many failed credentials (once per address and minute), by the check that reached the limit.',
    labelNames: ['route_family'],
    registers,
  });
  for (const check of checks) {
    failures.inc({ route_family: check }, 0);
    lockouts.inc({ route_family: check }, 0);
  }
  return {
    failed: (check) => failures.inc({ route_family: check }),
    lockedOut: (check) => lockouts.inc({ route_family: check }),
  };
}
