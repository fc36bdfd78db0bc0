import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, startServer, tempDataDir, type TestServer } from '../helper.ts';
import { rawRequest } from '../support/raw-http.ts';
import { spawnService } from '../support/service-process.ts';
import { until } from '../support/until.ts';

/*
 * Behind a reverse proxy every connection comes from the proxy: the per-address limits of open mode (the upload
 * rate, the upload slots, the event streams) would see one client. TRUST_PROXY names the proxies whose
 * X-Forwarded-For is believed. On loopback each 127.0.0.x source address is another host: 127.0.0.2 is the proxy,
 * 127.0.0.3 a client that connects directly and forges the header.
 */

const PROXY = '127.0.0.2';
const DIRECT = '127.0.0.3';
/** What an upload that is counted but not multipart gets; and what the one past the limit gets. */
const REFUSED = '400 FILE_MISSING';
const LIMITED = '429 RATE_LIMITED';

describe('TRUST_PROXY: the client address behind a reverse proxy', () => {
  let behind: TestServer;
  let unset: TestServer;

  beforeAll(async () => {
    // Clients elsewhere behind the proxy: open mode serves them only with OPEN_MODE_CLIENTS=any (its loopback-only
    // default has its own tests: open-mode-proxies.test.ts).
    const limits = { TRANSCRIBE_PROVIDER: 'local', UPLOAD_RATE_LIMIT_PER_MINUTE: '2', OPEN_MODE_CLIENTS: 'any' };
    behind = await startServer({ ...limits, TRUST_PROXY: `${PROXY}, ::1` });
    unset = await startServer(limits);
  });
  afterAll(async () => {
    for (const s of [behind, unset]) {
      await s?.close();
      if (s) await removeDir(s.dataDir);
    }
  });

  /** An upload (not a valid one: only whether it is counted matters) from `from`, with the header if given. */
  async function post(server: TestServer, from: string, forwardedFor?: string): Promise<string> {
    const reply = await rawRequest(server.url, {
      method: 'POST',
      target: '/v1/jobs',
      localAddress: from,
      headers: { 'content-type': 'text/plain', ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) },
      body: 'not an upload',
    });
    return `${reply.status} ${(JSON.parse(reply.body) as { error: { code: string } }).error.code}`;
  }

  it('counts each client behind a trusted proxy by the address the proxy forwards', async () => {
    expect(await post(behind, PROXY, '198.51.100.7')).toBe(REFUSED);
    expect(await post(behind, PROXY, '198.51.100.7')).toBe(REFUSED);
    expect(await post(behind, PROXY, '198.51.100.7')).toBe(LIMITED);
    // Another client through the same proxy has its own count.
    expect(await post(behind, PROXY, '198.51.100.8')).toBe(REFUSED);
    // What a client puts in front of the header itself is not believed: the proxy appends the address it saw.
    expect(await post(behind, PROXY, '203.0.113.1, 198.51.100.9')).toBe(REFUSED);
    expect(await post(behind, PROXY, '203.0.113.2, 198.51.100.9')).toBe(REFUSED);
    expect(await post(behind, PROXY, '203.0.113.3, 198.51.100.9')).toBe(LIMITED);
    expect((await rawRequest(behind.url, { method: 'GET', target: '/health/live', localAddress: PROXY })).status).toBe(
      200,
    );
  });

  it('counts an IPv6 client by its /64: addresses rotated inside it share one count', async () => {
    // SLAAC privacy addresses rotate at will inside a host's /64: each new one must not bring a fresh budget.
    expect(await post(behind, PROXY, '2001:db8:7:7::1')).toBe(REFUSED);
    expect(await post(behind, PROXY, '2001:db8:7:7:aaaa:bbbb:cccc:dddd')).toBe(REFUSED);
    expect(await post(behind, PROXY, '2001:db8:7:7::ffff:2')).toBe(LIMITED);
    // The next /64 is another client.
    expect(await post(behind, PROXY, '2001:db8:7:8::1')).toBe(REFUSED);
  });

  it('ignores the header from anyone else: a forged one does not let a client escape its limit', async () => {
    expect(await post(behind, DIRECT, '198.51.100.20')).toBe(REFUSED);
    expect(await post(behind, DIRECT, '198.51.100.21')).toBe(REFUSED);
    expect(await post(behind, DIRECT, '198.51.100.22')).toBe(LIMITED);
    expect(await post(behind, DIRECT)).toBe(LIMITED);
  });

  it('trusts no proxy while TRUST_PROXY is unset: every forwarded client is the proxy', async () => {
    expect(await post(unset, PROXY, '198.51.100.30')).toBe(REFUSED);
    expect(await post(unset, PROXY, '198.51.100.31')).toBe(REFUSED);
    expect(await post(unset, PROXY, '198.51.100.32')).toBe(LIMITED);
  });

  it("names the forwarded client in the request log of the real process, and the direct one's own address", async () => {
    const dataDir = await tempDataDir();
    const proc = spawnService({
      DATA_DIR: dataDir,
      TRANSCRIBE_PROVIDER: 'local',
      TRUST_PROXY: PROXY,
      OPEN_MODE_CLIENTS: 'any',
    });
    try {
      const url = await proc.url;
      const from = async (address: string, forwardedFor: string) => {
        const target = `/v1/jobs/job_${address.replaceAll('.', '_').padEnd(22, 'x')}`;
        const reply = await rawRequest(url, {
          method: 'DELETE',
          target,
          localAddress: address,
          headers: { 'x-forwarded-for': forwardedFor },
        });
        expect(reply.status).toBe(404);
        await until(
          () => proc.lines.some((l) => l.includes('"msg":"request completed"') && l.includes(target)),
          'the request log line',
        );
        const line = proc.lines.find((l) => l.includes('"msg":"request completed"') && l.includes(target))!;
        return (JSON.parse(line) as { remoteAddress?: string }).remoteAddress;
      };
      expect(await from(PROXY, '198.51.100.40')).toBe('198.51.100.40');
      expect(await from(DIRECT, '198.51.100.41')).toBe(DIRECT);
    } finally {
      await proc.kill9();
      await removeDir(dataDir);
    }
  });
});
