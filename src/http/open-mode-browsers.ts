import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

/**
 * Why a browser's request to a /v1 route is refused in open mode (no API keys), or null. Open mode is for a
 * machine of one's own, and a browser on that machine visits other sites: without a key, any of them could
 * otherwise send it work (a cross-site form or `fetch(..., { mode: 'no-cors' })` POST needs no preflight) or,
 * by rebinding its own host name to 127.0.0.1, read every job and transcript as a page of its own origin.
 * So a request that says it comes from a browser (`Sec-Fetch-Site` or `Origin`) is taken only from this
 * server's own pages (same origin), under a local host name (localhost, *.localhost or an IP literal: what a
 * rebound name never is). Clients that are not browsers send neither header and are not affected.
 */
export function openModeBrowserRefusal(headers: IncomingHttpHeaders): string | null {
  const site = headers['sec-fetch-site'];
  const origin = headers.origin;
  if (site === undefined && origin === undefined) return null;
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'cross_site';
  const host = headers.host ?? '';
  // `Origin: null` (a sandboxed frame, a file) is no origin of this server's.
  if (origin !== undefined && originHost(origin) !== host.toLowerCase()) return 'cross_site';
  return isLocalHost(host) ? null : 'browser_host_name';
}

/** The host:port of an Origin header as a Host header would name it, or '' when it is not an origin. */
function originHost(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return '';
  }
}

/** localhost, a name under .localhost (RFC 6761: always loopback) or an IP literal, with or without a port. */
function isLocalHost(hostHeader: string): boolean {
  const name = hostHeader
    .toLowerCase()
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0;
}
