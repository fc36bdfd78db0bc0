/** A component's state in the readiness report; the worst component's is the service's. */
export const COMPONENT_STATUSES = ['ok', 'degraded', 'down'] as const;
export type ComponentStatus = (typeof COMPONENT_STATUSES)[number];

/**
 * One component of the readiness report, as the part that owns it checks it (a binary, the disk, the queue's
 * Redis). The detail may name paths and versions: the HTTP layer shows it only to a caller allowed to see internals.
 */
export interface ComponentCheck {
  status: ComponentStatus;
  detail: string;
}
