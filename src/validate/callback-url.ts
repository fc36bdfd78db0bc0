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
  /** Ports a callback may go to (the URL's own or its scheme's). @default defaultCallbackPorts(allowPrivate) */
  ports?: CallbackPorts;
}

/**
 * The ports callbacks may go to: every port, or a list. A tenant chooses the callback URL and reads how its
 * delivery went (`webhook.last_error`): with every port open, the service would probe any public host's ports
 * for them (connection refused, timed out, answered) and speak HTTP at mail or database servers from its own
 * address.
 */
export type CallbackPorts = 'any' | ReadonlySet<number>;

/** The web's own ports: the default for a server whose callbacks go to public hosts. */
export const WEB_PORTS: ReadonlySet<number> = new Set([80, 443]);

/**
 * The ports allowed when none are configured: the web's for a server whose callbacks go to public hosts, every
 * port for one that allows private receivers (its operator runs them on their own network, on ports they choose).
 */
export function defaultCallbackPorts(allowPrivate: boolean): CallbackPorts {
  return allowPrivate ? 'any' : WEB_PORTS;
}

/** The port a callback URL connects to: its own, or its scheme's (http 80, https 443). */
export function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Why `url`'s port is refused under `ports` (a phrase after "callback_url"), or null when it is allowed. */
export function refusedPort(url: URL, ports: CallbackPorts): string | null {
  if (ports === 'any') return null;
  const port = portOf(url);
  if (ports.has(port)) return null;
  return `uses port ${port}; this server sends callbacks to port${ports.size === 1 ? '' : 's'} ${[...ports].sort((a, b) => a - b).join(', ')} only (WEBHOOK_PORTS)`;
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
  const where = options.allowPrivate === true ? null : privateHost(host);
  if (where !== null) return { ok: false, reason: `points at ${where}; use a publicly reachable host` };
  const port = refusedPort(url, options.ports ?? defaultCallbackPorts(options.allowPrivate === true));
  if (port !== null) return { ok: false, reason: port };
  return { ok: true, url: url.href };
}

/** What a URL's host (lower case, no brackets) names that is not public, judged without DNS; null: maybe public. */
function privateHost(host: string): string | null {
  if (host === 'localhost' || host.endsWith('.localhost') || host === 'localhost.') return 'localhost';
  return ipaddr.isValid(host) ? nonPublicReason(host) : null;
}

/** The 64:ff9b:1::/48 local-use NAT64 prefix (RFC 8215): each network chooses where it embeds the IPv4 address. */
const LOCAL_USE_NAT64 = ipaddr.parseCIDR('64:ff9b:1::/48');
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96');

/**
 * The IPv4 address an IPv6 address stands for, and the name of the scheme, or null. Traffic to these reaches (or,
 * through a local translator or tunnel, may reach) that IPv4 address, so it is what must be judged: `::127.0.0.1`
 * is loopback, not a public IPv6 address.
 */
function embeddedIPv4(addr: ipaddr.IPv6): { ipv4: ipaddr.IPv4; scheme: string } | null {
  const b = addr.toByteArray();
  const last32 = (): ipaddr.IPv4 => new ipaddr.IPv4(b.slice(12, 16));
  switch (addr.range()) {
    case 'ipv4Mapped':
      return { ipv4: last32(), scheme: 'IPv4-mapped' };
    case 'rfc6145':
      return { ipv4: last32(), scheme: 'IPv4-translated' };
    case 'rfc6052':
      // 64:ff9b::/96 carries it in the last 32 bits; the local-use /48 is refused before this is asked.
      return { ipv4: last32(), scheme: 'NAT64' };
    case '6to4':
      return { ipv4: new ipaddr.IPv4(b.slice(2, 6)), scheme: '6to4' };
    case 'teredo':
      // The Teredo client's public IPv4 address is stored inverted in the last 32 bits (RFC 4380).
      return { ipv4: new ipaddr.IPv4(b.slice(12, 16).map((x) => x ^ 0xff)), scheme: 'Teredo' };
    case 'unicast':
      // IPv4-compatible (deprecated by RFC 4291, but still routed by some stacks); ipaddr.js names no range for it.
      return addr.match(IPV4_COMPATIBLE) ? { ipv4: last32(), scheme: 'IPv4-compatible' } : null;
    default:
      return null;
  }
}

function withArticle(range: string): string {
  return `${/^(?:[aeio]|un(?!i)|ipv)/i.test(range) ? 'an' : 'a'} ${range} address`;
}

/**
 * Why an IP address is not plain public unicast (loopback, private, uniqueLocal, linkLocal, unspecified, multicast,
 * carrierGradeNat, reserved, ...), as a phrase such as "a loopback address", or null for a public one. An IPv6
 * address that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo) is
 * judged by the IPv4 address it embeds; the local-use NAT64 prefix, whose embedding each network chooses, is never
 * public.
 */
export function nonPublicReason(address: string): string | null {
  const addr = ipaddr.parse(address);
  if (addr.kind() === 'ipv4') {
    const range = addr.range();
    return range === 'unicast' ? null : withArticle(range);
  }
  const v6 = addr as ipaddr.IPv6;
  if (v6.match(LOCAL_USE_NAT64)) return 'a local-use NAT64 address';
  const embedded = embeddedIPv4(v6);
  if (embedded === null) {
    const range = v6.range();
    return range === 'unicast' ? null : withArticle(range);
  }
  const range = embedded.ipv4.range();
  if (range === 'unicast') return null;
  return `${withArticle(embedded.scheme)} embedding ${embedded.ipv4.toString()}, ${withArticle(range)}`;
}
