import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCallbackUrl, nonPublicReason } from '../../src/validate/callback-url.ts';
import { createWebhookSender, WebhookRefusedError, type ResolveAll } from '../../src/webhooks/sender.ts';

/** Addresses that embed an IPv4 address, as a URL's host and as a resolver answer, with the range they stand for. */
const EMBEDDING: readonly (readonly [address: string, range: string | null])[] = [
  // IPv4-compatible ::/96 (the URL parser writes [::127.0.0.1] as [::7f00:1])
  ['::7f00:1', 'loopback'],
  ['::a00:1', 'private'],
  ['::c0a8:101', 'private'],
  ['::a9fe:a9fe', 'linkLocal'],
  ['::2', 'unspecified'],
  ['::808:808', null],
  // IPv4-mapped ::ffff:0:0/96
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:a00:1', 'private'],
  ['::ffff:808:808', null],
  // IPv4-translated ::ffff:0:0:0/96
  ['::ffff:0:a00:1', 'private'],
  ['::ffff:0:808:808', null],
  // NAT64 well-known prefix 64:ff9b::/96
  ['64:ff9b::7f00:1', 'loopback'],
  ['64:ff9b::a9fe:a9fe', 'linkLocal'],
  ['64:ff9b::808:808', null],
  // 6to4 2002::/16: the IPv4 address is bits 16..47
  ['2002:7f00:1::1', 'loopback'],
  ['2002:a00:1:1::1', 'private'],
  ['2002:808:808::1', null],
  // Teredo 2001::/32: the client's IPv4 address is the inverted last 32 bits (80ff:fffe -> 127.0.0.1)
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'],
  ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', null],
];

describe('nonPublicReason', () => {
  it.each(EMBEDDING)('judges %s by the IPv4 address it embeds (%s)', (address, range) => {
    const reason = nonPublicReason(address);
    if (range === null) expect(reason).toBeNull();
    else expect(reason).toMatch(new RegExp(`embedding [\\d.]+, an? ${range} address$`));
  });

  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['10.0.0.1', 'a private address'],
    ['0.0.0.0', 'an unspecified address'],
    ['::1', 'a loopback address'],
    ['::', 'an unspecified address'],
    ['fd00::1', 'a uniqueLocal address'],
    ['fe80::1', 'a linkLocal address'],
    ['2001:db8::1', 'a reserved address'],
    // The local-use prefix (RFC 8215) embeds where each network chooses: never public, whatever it carries.
    ['64:ff9b:1::808:808', 'a local-use NAT64 address'],
    ['64:ff9b:1:808:8:800::', 'a local-use NAT64 address'],
  ])('says %s is %s', (address, reason) => {
    expect(nonPublicReason(address)).toBe(reason);
  });

  it.each(['8.8.8.8', '93.184.216.34', '2606:4700::1111', '2a00:1450:4001:82b::200e'])('finds %s public', (address) => {
    expect(nonPublicReason(address)).toBeNull();
  });

  it('names the embedded address and the scheme', () => {
    expect(nonPublicReason('2002:7f00:1::1')).toBe('a 6to4 address embedding 127.0.0.1, a loopback address');
    expect(nonPublicReason('2001:0:4136:e378:8000:63bf:80ff:fffe')).toBe(
      'a Teredo address embedding 127.0.0.1, a loopback address',
    );
  });
});

describe('checkCallbackUrl with IPv6 literals that embed IPv4', () => {
  it.each([
    'http://[::127.0.0.1]/',
    'http://[::a00:1]/',
    'http://[::ffff:0:10.0.0.1]/',
    'http://[64:ff9b::127.0.0.1]/',
    'http://[2002:7f00:1::]/cb',
    'http://[2001:0:0:0:0:0:80ff:fffe]:8080/',
  ])('refuses %s', (url) => {
    expect(checkCallbackUrl(url, { ports: 'any' })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^points at .*embedding .*; use a publicly reachable host$/),
    });
  });

  it.each(['http://[::8.8.8.8]/', 'http://[64:ff9b::8.8.8.8]/', 'https://[2002:808:808::1]/cb'])(
    'accepts %s',
    (url) => {
      expect(checkCallbackUrl(url)).toMatchObject({ ok: true });
    },
  );
});

describe('webhook sender refuses embedded non-public IPv4 at connect time', () => {
  let server: Server;
  let port: number;
  let requests = 0;

  beforeAll(async () => {
    server = createServer((_req, res) => {
      requests += 1;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const request = (url: string) => ({ url, body: '{}', headers: {} });

  it.each(['::7f00:1', '2002:7f00:1::1', '64:ff9b::7f00:1', '2001:0:4136:e378:8000:63bf:80ff:fffe'])(
    'refuses a host name that resolves to %s (DNS rebinding) without a request',
    async (answer) => {
      // The answer a rebinding DNS server would give after the upload check: alongside a public one, so that one
      // bad answer is enough to refuse.
      const resolve: ResolveAll = (_host, _options, callback) => {
        callback(null, [
          { address: '93.184.216.34', family: 4 },
          { address: answer, family: 6 },
        ]);
      };
      const send = createWebhookSender({ allowPrivate: false, ports: 'any', timeoutMs: 5000, resolve });
      const sent = send(request(`http://hooks.example.com:${port}/cb`));
      await expect(sent).rejects.toBeInstanceOf(WebhookRefusedError);
      await expect(sent).rejects.toThrow(/^hooks\.example\.com resolves to a loopback address$/);
      expect(requests).toBe(0);
    },
  );

  it('names the kind of address a refused name resolves to, never the address (the tenant reads it)', async () => {
    const resolve: ResolveAll = (_host, _options, callback) => {
      callback(null, [{ address: '10.0.3.4', family: 4 }]);
    };
    const send = createWebhookSender({ allowPrivate: false, ports: 'any', timeoutMs: 5000, resolve });
    const sent = send(request(`http://db.internal:${port}/cb`));
    await expect(sent).rejects.toThrow(/^db\.internal resolves to a private address$/);
    await expect(sent).rejects.not.toThrow(/10\.0\.3\.4/);
    expect(requests).toBe(0);
  });

  it('refuses the literal [::127.0.0.1] without a request', async () => {
    const send = createWebhookSender({ allowPrivate: false, ports: 'any', timeoutMs: 5000 });
    await expect(send(request(`http://[::127.0.0.1]:${port}/cb`))).rejects.toThrow(
      /^::7f00:1 is an IPv4-compatible address embedding 127\.0\.0\.1, a loopback address$/,
    );
    expect(requests).toBe(0);
  });

  it('still sends when the resolver answers with the receiver on 127.0.0.1 and private addresses are allowed', async () => {
    const send = createWebhookSender({ allowPrivate: true, ports: 'any', timeoutMs: 5000 });
    await expect(send(request(`http://127.0.0.1:${port}/cb`))).resolves.toEqual({ statusCode: 200 });
    expect(requests).toBe(1);
  });

  it('refuses a port WEBHOOK_PORTS does not list without a request, even to an allowed private receiver', async () => {
    // The port is checked at each send too: a job accepted before the list narrowed must not reach a closed port.
    const send = createWebhookSender({ allowPrivate: true, ports: new Set([80, 443]), timeoutMs: 5000 });
    const before = requests;
    const sent = send(request(`http://127.0.0.1:${port}/cb`));
    await expect(sent).rejects.toBeInstanceOf(WebhookRefusedError);
    await expect(sent).rejects.toThrow(
      new RegExp(`^callback_url uses port ${port}; this server sends callbacks to ports 80, 443 only`),
    );
    expect(requests).toBe(before);
    const listed = createWebhookSender({ allowPrivate: true, ports: new Set([port]), timeoutMs: 5000 });
    await expect(listed(request(`http://127.0.0.1:${port}/cb`))).resolves.toEqual({ statusCode: 200 });
    expect(requests).toBe(before + 1);
  });
});
