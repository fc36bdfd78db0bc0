import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Why open mode does not serve a client (the 401's `details.reason`). */
export type OpenModeClientRefusal = 'open_mode_remote' | 'open_mode_proxied';

/** 127.0.0.0/8 and ::1; BlockList also matches the IPv4-mapped form (::ffff:127.0.0.1) a dual-stack socket gives. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether an address is this machine's loopback (a client on the same host), in any of its spellings. */
export function isLoopbackAddress(address: string | undefined): boolean {
  const family = isIP(address ?? '');
  return family !== 0 && LOOPBACK.check(address ?? '', family === 4 ? 'ipv4' : 'ipv6');
}

/** Headers a reverse proxy puts on a request it forwards (the de facto, the standard and nginx's own). */
const FORWARDING_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip'] as const;

/** What the check reads of a request: Fastify's request.ip, request.ips and the headers. */
export interface OpenModeClient {
  /** The client's address as TRUST_PROXY resolves it: the connection's, or the one a trusted proxy forwarded. */
  ip: string | undefined;
  /**
   * Fastify's request.ips (only with TRUST_PROXY): the connection's address, then each forwarded one believed, up to
   * the client's.
   */
  ips?: readonly string[] | undefined;
  headers: IncomingHttpHeaders;
}

/**
 * Why open mode with OPEN_MODE_CLIENTS=loopback refuses a client, or null when it serves it. Like Redis' protected
 * mode: without API keys, only a client on this machine gets in, so a service listening on every interface (the
 * default HOST) does not hand its provider key, disk and CPU to whoever reaches the port. The address decides, as
 * TRUST_PROXY resolves it: a client behind a trusted proxy is the address the proxy forwards (and is local only
 * when the proxy is too), and a header from any other peer is ignored. A proxy on this machine that is not trusted
 * connects from loopback for every client: when such a peer says it forwards (a forwarding header it sent was not
 * believed) the client is unknown, so it is refused too. Headers only ever refuse here; a client is served on its
 * address alone. A proxy that says nothing (a TCP relay, an SSH tunnel) cannot be told from a local client: it is
 * the operator's own way in (`ssh -L`).
 */
export function openModeClientRefusal(client: OpenModeClient): OpenModeClientRefusal | null {
  // Every hop too: a trusted proxy on another host forwards its own loopback clients as 127.0.0.1.
  const path = client.ips ?? [];
  if (!isLoopbackAddress(client.ip) || !path.every(isLoopbackAddress)) return 'open_mode_remote';
  const believed = path.length > 1;
  if (!believed && FORWARDING_HEADERS.some((name) => client.headers[name] !== undefined)) return 'open_mode_proxied';
  return null;
}

/** The 401's message for each refusal: what the operator does about it. */
export const OPEN_MODE_CLIENT_MESSAGES: Record<OpenModeClientRefusal, string> = {
  open_mode_remote:
    'This server has no API keys: it serves clients on its own machine only. Give it API keys (API_KEYS) and send ' +
    'one as `Authorization: Bearer <key>`, or set OPEN_MODE_CLIENTS=any to serve every client without a key.',
  open_mode_proxied:
    'This server has no API keys and serves clients on its own machine only; this request came through a proxy ' +
    'it does not trust, so the client is unknown. Name the proxy in TRUST_PROXY, give the server API keys ' +
    '(API_KEYS), or set OPEN_MODE_CLIENTS=any to serve every client without a key.',
};
