import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { jobFiles, removeDir, startServer, upload, type TestServer } from '../helper.ts';
import { rawRequest } from '../support/raw-http.ts';

/**
 * Open mode (no API keys) is for a machine of one's own; the sites its browser visits must not use it. A browser
 * says where a request comes from (Sec-Fetch-Site, Origin); a site that rebinds its own name to 127.0.0.1 still
 * sends that name as Host.
 */
describe('open mode and browsers', () => {
  let server: TestServer;
  let host: string;
  const speech = speechFixture();
  beforeAll(async () => {
    server = await startServer({ API_KEYS: undefined, API_KEYS_FILE: undefined });
    host = new URL(server.url).host;
  });
  afterAll(async () => {
    await server?.close();
    if (server) await removeDir(server.dataDir);
  });

  const get = (target: string, headers: Record<string, string>) =>
    rawRequest(server.url, { method: 'GET', target, headers });

  it('refuses a cross-site upload with 401 UNAUTHORIZED, keeping nothing', async () => {
    const cases: Array<Record<string, string>> = [
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
      // A browser that sends no Sec-Fetch-Site still sends Origin on a cross-origin POST.
      { origin: 'http://evil.example' },
      // A sandboxed frame's origin.
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const headers of cases) {
      const res = await upload(server.url, speech.wav, { language: 'en' }, headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'UNAUTHORIZED', details: { reason: 'cross_site' } });
    }
    const openai = await fetch(`${server.url}/v1/audio/transcriptions`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
      body: new FormData(),
    });
    expect(openai.status).toBe(401);
    expect(await openai.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
    expect(await jobFiles(server.dataDir)).toEqual([]);
  });

  it('refuses a browser that reached it under another host name (DNS rebinding), reads included', async () => {
    for (const target of ['/v1/jobs', '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA/transcript']) {
      const res = await get(target, {
        host: `rebound.example:${new URL(server.url).port}`,
        'sec-fetch-site': 'same-origin',
      });
      expect(res.status, target).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({
        error: { code: 'UNAUTHORIZED', details: { reason: 'browser_host_name' } },
      });
    }
  });

  it("serves its own page's requests, under localhost or an IP, and clients that are not browsers under any name", async () => {
    const port = new URL(server.url).port;
    const cases: Array<Record<string, string>> = [
      { host, 'sec-fetch-site': 'same-origin' },
      { host: `localhost:${port}`, 'sec-fetch-site': 'same-origin' },
      { host: `[::1]:${port}`, 'sec-fetch-site': 'none' },
      { host: `myserver.lan:${port}` },
    ];
    for (const headers of cases) {
      const res = await get('/v1/jobs', headers);
      expect(res.status, JSON.stringify(headers)).toBe(200);
    }
    const own = await upload(
      server.url,
      speech.wav,
      { language: 'en' },
      { origin: server.url, 'sec-fetch-site': 'same-origin' },
    );
    expect(own.status).toBe(202);
    // The page itself and health stay public whoever asks.
    expect((await get('/', { host: `rebound.example:${port}`, 'sec-fetch-site': 'cross-site' })).status).toBe(200);
    expect((await get('/health/live', { 'sec-fetch-site': 'cross-site' })).status).toBe(200);
  });
});
