import ipaddr from 'ipaddr.js';

export interface CallbackUrlOptions {
  /**
   * Accept loopback, private, link-local, unspecified and other non-public literal addresses and `localhost`
   * (for a callback receiver on the same host or network, e.g. in tests).
   * @default false
   */
  allowPrivate?: boolean;
  /** @default 2048 */
  maxLength?: number;
}

export type CallbackUrlResult = { ok: true; url: string } | { ok: false; reason: string };

/**
 * Checks what can be checked without DNS: scheme, length, and literal addresses. A public host name that
 * resolves to a private address is NOT caught here; whoever sends the callback must check the resolved address
 * at connect time (DNS answers can change between this check and the send).
 */
export function checkCallbackUrl(raw: string, options: CallbackUrlOptions = {}): CallbackUrlResult {
  const maxLength = options.maxLength ?? 2048;
  if (raw.length > maxLength) return { ok: false, reason: `is longer than ${maxLength} characters` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'is not an absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `uses ${url.protocol.replace(/:$/, '')}; only http and https are accepted` };
  }
  // The WHATWG parser already turned decimal/hex/short IPv4 forms (http://2130706433/) into dotted quads.
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === '') return { ok: false, reason: 'has no host' };
  if (options.allowPrivate === true) return { ok: true, url: url.href };
  if (host === 'localhost' || host.endsWith('.localhost') || host === 'localhost.') {
    return { ok: false, reason: 'points at localhost; use a publicly reachable host' };
  }
  const range = ipaddr.isValid(host) ? nonPublicRange(host) : null;
  if (range !== null) return { ok: false, reason: `points at a ${range} address; use a publicly reachable host` };
  return { ok: true, url: url.href };
}

/**
 * The range of an IP address that is not plain public unicast (loopback, private, uniqueLocal, linkLocal,
 * unspecified, multicast, carrierGradeNat, reserved, and the IPv6 tunnelling ranges that can embed a private IPv4
 * address), or null for a public one. IPv4-mapped IPv6 is judged as the IPv4 address it carries.
 */
export function nonPublicRange(address: string): string | null {
  let addr = ipaddr.parse(address);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
  }
  const range = addr.range();
  return range === 'unicast' ? null : range;
}
