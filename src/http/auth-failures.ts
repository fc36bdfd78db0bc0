import { isIPv4, isIPv6 } from 'node:net';

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
 * Pure: the client a failure counts against. An IPv6 client is its /64, the block one host or home is given (SLAAC
 * and privacy addresses rotate inside it at will), so rotating addresses neither buys more guesses nor floods the
 * table; an IPv4-mapped address is its IPv4 address. Anything else counts as it is written.
 */
export function clientOf(address: string): string {
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return mapped;
  if (!isIPv6(bare)) return address;
  const [head = '', tail] = bare.toLowerCase().split('::');
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const front = groups(head);
  // An IPv4 tail (64:ff9b::198.18.0.1) stands for the last two groups, never the first four.
  const back = groups(tail);
  const all =
    tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
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
