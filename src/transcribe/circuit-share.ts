import type { ErrorCode } from '../errors.ts';

/** An open circuit as hosts tell each other: why, and until when (epoch ms) no probe goes. */
export interface CircuitOpening {
  /** This open period's own name: a probe claim and a close are for one period, never for a later one. */
  id: string;
  code: ErrorCode;
  reason: string;
  openedAt: number;
  retryAt: number;
}

/** A probe's success, said by its host: when, and the open period (`CircuitOpening.id`) that the probe was for. */
export interface CircuitClosing {
  closedAt: number;
  id: string;
}

/**
 * The breaker's state shared with the other hosts (scale-out; the Redis adapter is src/scale/shared-circuit.ts):
 * what this breaker learns from the provider is published, what another host learned is mirrored here.
 */
export interface SharedCircuit {
  /** Tells the other hosts; best effort (a failure is logged, this host's breaker holds either way). */
  publish(change: { open: CircuitOpening } | CircuitClosing): void;
  /** Calls back for each change another host publishes, and once with the circuit open now, if it is. */
  follow(mirror: { opened(opening: CircuitOpening): void; closed(closedAt: number): void }): void;
  /**
   * Whether this host sends the half-open probe, the one of every host, for the next `holdMs` (another host may
   * claim it after that, in case this one died mid-probe), in the open period `id`; false once that period has
   * ended (closed, or followed by another open), even if this host has not heard of it yet. True when the shared
   * state cannot be asked.
   */
  claimProbe(id: string, holdMs: number): Promise<boolean>;
}

/** How long the probe claimed by one host keeps the others from probing (a host that dies mid-probe frees it then). */
export const PROBE_HOLD_MS = 60_000;
