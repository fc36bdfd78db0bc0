import { clientOf } from './client-address.ts';

/** How many client addresses are tracked at once: the oldest is forgotten first, so memory stays bounded. */
export const AUTH_FAILURE_ADDRESSES_MAX = 10_000;
const WINDOW_MS = 60_000;

/**
 * Where a credential is checked, as the metrics name it (a label of bounded cardinality: never the address, the
 * route's URL or the credential): an API key on a /v1 route, the metrics token on /metrics, a bearer on /health.
 */
export const CREDENTIAL_CHECKS = ['v1', 'metrics', 'health'] as const;
export type CredentialCheck = (typeof CREDENTIAL_CHECKS)[number];

export interface AuthFailures {
  /** Whether requests from `address` that present a credential are refused now, and for how many more ms. */
  lockedFor(address: string): number | null;
  /** Counts one credential that matched nothing, sent from `address` where `check` checks one. */
  failed(address: string, check: CredentialCheck): void;
}

/**
 * Failed credential checks per client (an address; an IPv6 client's /64, see clientOf): after `perMinute` of them within a minute of the first, the
 * address is locked out until that minute ends. Fixed windows counted from timestamps (`now`), no timers: a
 * window that has ended is simply a stale entry, replaced on the next failure. A success does not reset the
 * count, so a caller holding one valid key cannot interleave it with guesses. Per process: each host counts alone.
 * `perMinute` 0 turns the limit off.
 */
export function authFailures(opts: {
  perMinute: number;
  now: () => number;
  maxAddresses?: number;
  /** Told of every failed check, the limit off too (the operator's metric). */
  onFailure?: (check: CredentialCheck) => void;
  /** Told once per window when an address reaches the limit, with the check that reached it (log line, metric). */
  onLockout?: (address: string, lockedMs: number, check: CredentialCheck) => void;
}): AuthFailures {
  const { perMinute, now, maxAddresses = AUTH_FAILURE_ADDRESSES_MAX, onFailure, onLockout } = opts;
  /** Insertion order is the order of each address's window start: the first entry is the oldest. */
  const windows = new Map<string, { endsAt: number; count: number }>();

  return {
    lockedFor(address) {
      const w = windows.get(clientOf(address));
      if (perMinute === 0 || !w || w.count < perMinute) return null;
      const left = w.endsAt - now();
      return left > 0 ? left : null;
    },
    failed(from, check) {
      onFailure?.(check);
      if (perMinute === 0) return;
      const address = clientOf(from);
      const t = now();
      const w = windows.get(address);
      if (w && w.endsAt > t) {
        w.count += 1;
        if (w.count === perMinute) onLockout?.(address, w.endsAt - t, check);
        return;
      }
      // A new window goes to the end of the order, so eviction drops the address whose window began first.
      windows.delete(address);
      while (windows.size >= maxAddresses) {
        const oldest = windows.keys().next().value;
        if (oldest === undefined) break;
        windows.delete(oldest);
      }
      windows.set(address, { endsAt: t + WINDOW_MS, count: 1 });
      if (perMinute === 1) onLockout?.(address, WINDOW_MS, check);
    },
  };
}
