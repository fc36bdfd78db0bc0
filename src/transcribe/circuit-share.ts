import type { ErrorCode } from '../errors.ts';

/** An open circuit as hosts tell each other: why, and until when (epoch ms) no probe goes. */
export interface CircuitOpening {
  code: ErrorCode;
  reason: string;
  openedAt: number;
  retryAt: number;
}

/**
 * The breaker's state shared with the other hosts (scale-out; the Redis adapter is src/scale/shared-circuit.ts):
 * what this breaker learns from the provider is published, what another host learned is mirrored here.
 */
export interface SharedCircuit {
  /** Tells the other hosts; best effort (a failure is logged, this host's breaker holds either way). */
  publish(change: { open: CircuitOpening } | { closedAt: number }): void;
  /** Calls back for each change another host publishes, and once with the circuit open now, if it is. */
  follow(mirror: { opened(opening: CircuitOpening): void; closed(closedAt: number): void }): void;
  /**
   * Whether this host sends the half-open probe, the one of every host, for the next `holdMs` (another host may
   * claim it after that, in case this one died mid-probe). True when the shared state cannot be asked.
   */
  claimProbe(holdMs: number): Promise<boolean>;
}

/** How long the probe claimed by one host keeps the others from probing (a host that dies mid-probe frees it then). */
export const PROBE_HOLD_MS = 60_000;
