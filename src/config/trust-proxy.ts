import { isIP } from 'node:net';

/** Names proxy-addr (Fastify's trustProxy) knows for the private ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const MAX_TRUSTED_PROXIES = 100;

/**
 * TRUST_PROXY's entries: an address, a CIDR range or a named range each. Never everyone (`true`, `*`, a /0 range):
 * any client could then say who it is, and escape its per-address limits with a header.
 */
export function trustedProxies(value: string | undefined): { proxies: string[]; issues: string[] } {
  const proxies = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (proxies.length > MAX_TRUSTED_PROXIES)
    return { proxies: [], issues: [`TRUST_PROXY: at most ${MAX_TRUSTED_PROXIES} entries`] };
  const issues = proxies
    .filter((p) => !isProxyRange(p))
    .map(
      (p) =>
        `TRUST_PROXY: ${JSON.stringify(p)} is not an IP address, a CIDR range (other than /0, which is everyone) or one of ${[...PROXY_RANGE_NAMES].join(', ')}`,
    );
  return { proxies, issues };
}

function isProxyRange(entry: string): boolean {
  if (PROXY_RANGE_NAMES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128);
}
