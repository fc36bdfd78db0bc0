import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { nonPublicReason, refusedPort, type CallbackPorts } from '../validate/callback-url.ts';

// Not `import http from 'node:http'`: an ESM import of node:http reads all its exports, and the lazy WebSocket
// ones load Node's bundled undici (~12 MiB RSS for an idle service, docs/performance.md); the CommonJS object does not.
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

/** The address is one webhooks may not reach: retrying will not help, so no request is made and none is retried. */
export class WebhookRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookRefusedError';
  }
}

export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

export type WebhookSend = (request: WebhookRequest) => Promise<{ statusCode: number }>;

/** The resolver behind the check (node:dns lookup with `all: true`); tests pass one with chosen answers. */
export type ResolveAll = (
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface WebhookSenderOptions {
  allowPrivate: boolean;
  /** Checked again at each send: a job accepted before WEBHOOK_PORTS narrowed must not reach a port now closed. */
  ports: CallbackPorts;
  timeoutMs: number;
  /** @default node:dns lookup */
  resolve?: ResolveAll;
}

const dnsResolveAll: ResolveAll = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, callback);
};

/**
 * Resolves like the default lookup but refuses when any answer is not public. It runs inside the connect, so the
 * address checked is the address used: a DNS answer that changes after the upload check (rebinding) is caught.
 */
function publicOnlyLookup(resolve: ResolveAll): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      for (const { address } of addresses) {
        const reason = nonPublicReason(address);
        if (reason !== null) {
          // The tenant reads this (the job's webhook.last_error): the kind of address only, not the address a
          // name resolved to inside the operator's network, which would make the service a DNS oracle for it.
          const kind = reason.split(', ').at(-1) ?? reason;
          callback(new WebhookRefusedError(`${hostname} resolves to ${kind}`), '', 0);
          return;
        }
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
    });
  };
}

/**
 * One POST, no redirects followed (a 3xx is an answer like any other non-2xx). Resolves with the status code;
 * rejects on network errors, the timeout, and WebhookRefusedError for a non-public address.
 */
export function createWebhookSender(options: WebhookSenderOptions): WebhookSend {
  const lookup = options.allowPrivate ? undefined : publicOnlyLookup(options.resolve ?? dnsResolveAll);
  return (request) =>
    new Promise((resolve, reject) => {
      const url = new URL(request.url);
      const port = refusedPort(url, options.ports);
      if (port !== null) {
        reject(new WebhookRefusedError(`callback_url ${port}`));
        return;
      }
      const host = url.hostname.replace(/^\[|\]$/g, '');
      // A literal address never goes through lookup.
      const reason = !options.allowPrivate && ipaddr.isValid(host) ? nonPublicReason(host) : null;
      if (reason !== null) {
        reject(new WebhookRefusedError(`${host} is ${reason}`));
        return;
      }
      const client = url.protocol === 'https:' ? https : http;
      const req = client.request(url, {
        method: 'POST',
        headers: {
          ...request.headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(request.body),
        },
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(lookup && { lookup }),
        // A fresh connection per attempt, so every attempt goes through the checked lookup (no pooled socket).
        agent: false,
      });
      req.once('response', (res) => {
        // The answer's body means nothing to us; read it away so the socket closes.
        res.resume();
        res.once('end', () => resolve({ statusCode: res.statusCode ?? 0 }));
        res.once('error', reject);
      });
      req.once('error', reject);
      req.end(request.body);
    });
}
