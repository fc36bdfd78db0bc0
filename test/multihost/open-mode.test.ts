import net from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, tempDataDir, upload } from '../helper.ts';
import { createNetns, type Netns, type NetnsHost } from '../support/netns.ts';
import { rawRequest } from '../support/raw-http.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';

/*
 * Open mode (no API keys) with its default OPEN_MODE_CLIENTS=loopback, as a deployment runs it: the service on a
 * host of its own (a network namespace) listening on every interface (HOST=0.0.0.0, the default), a remote client
 * (this test process, on the bridge) and a client on the service's own machine (a node process in the namespace,
 * which reaches it on 127.0.0.1).
 */

const KEY = 'open-mode-remote-key-0123456789';
const UNAUTHORIZED_REMOTE = { code: 'UNAUTHORIZED', details: { reason: 'open_mode_remote' } };

interface Reply {
  status: number;
  body: { view?: string; error?: { code: string; message: string; details?: unknown } };
}

/** One service process on `host`, on every interface of it, and its URL as a remote client reaches it. */
interface Started {
  proc: ServiceProcess;
  dataDir: string;
  port: number;
  /** The URL at the host's bridge address. */
  remote: string;
}

async function start(netns: Netns, host: NetnsHost, env: Record<string, string>): Promise<Started> {
  const dataDir = await tempDataDir();
  const proc = spawnService(
    { DATA_DIR: dataDir, TRANSCRIBE_PROVIDER: 'local', PRESSURE_EVENT_LOOP_DELAY_MS: '0', HOST: '0.0.0.0', ...env },
    [],
    host,
  );
  const port = Number(new URL(await proc.url).port);
  return { proc, dataDir, port, remote: `http://${host.host}:${port}` };
}

async function stop(netns: Netns, host: NetnsHost, started: Started | undefined): Promise<void> {
  if (!started) return;
  await started.proc.kill9();
  await netns.killAll(host);
  await removeDir(started.dataDir);
}

/** GET `target` from a client on the service's own machine: a node process in its namespace, on 127.0.0.1. */
async function fromItsMachine(
  netns: Netns,
  host: NetnsHost,
  port: number,
  target: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const script =
    `fetch('http://127.0.0.1:${port}${target}', { headers: ${JSON.stringify(headers)}, signal: AbortSignal.timeout(20000) })` +
    '.then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.json() })))' +
    '.catch((e) => console.log(JSON.stringify({ status: 0, body: { error: { code: String(e), message: "" } } })))';
  const child = netns.exec(host, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  // Bounded by the script's own 20 s abort; the kill is for a node that never got that far.
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await new Promise((resolve) => child.once('close', resolve));
  clearTimeout(killer);
  return JSON.parse(out) as Reply;
}

/**
 * An upload that announces `bytes` and sends none of them: its answer comes before the body, or never (then the
 * socket's timeout says so).
 */
function answerBeforeBody(url: string, bytes: number): Promise<{ status: number; body: Reply['body'] }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let text = '';
    socket.setTimeout(20_000, () => socket.destroy(new Error('no answer before the body within 20 s')));
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? NaN);
      if (end === -1 || text.length < end + 4 + length) return;
      socket.destroy();
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]),
        body: JSON.parse(text.slice(end + 4, end + 4 + length)) as Reply['body'],
      });
    });
    socket.write(
      `POST /v1/jobs HTTP/1.1\r\nhost: ${hostname}:${port}\r\n` +
        `content-type: multipart/form-data; boundary=b\r\ncontent-length: ${bytes}\r\n\r\n`,
    );
  });
}

describe('open mode and clients on other hosts', () => {
  let netns: Netns;
  let host: NetnsHost;
  const speech = speechFixture();

  beforeAll(async () => {
    netns = await createNetns(['api']);
    host = netns.host('api');
  });
  afterAll(async () => netns?.remove());

  describe('OPEN_MODE_CLIENTS unset (loopback), TRUST_PROXY=loopback', () => {
    let service: Started | undefined;
    let browser: BrowserContext | undefined;
    let userDataDir: string | undefined;
    beforeAll(async () => {
      service = await start(netns, host, { TRUST_PROXY: 'loopback' });
    });
    afterAll(async () => {
      await browser?.close();
      if (userDataDir) await removeDir(userDataDir);
      await stop(netns, host, service);
    });

    it('says at start that open mode serves loopback clients only', () => {
      const warning = service!.proc.lines.find((l) => l.includes('API_KEYS is not set'));
      expect(warning).toContain('"openModeClients":"loopback"');
      expect(warning).toContain('clients on this machine (loopback) only');
    });

    it('refuses a remote client with 401 open_mode_remote on every /v1 route, before reading a body', async () => {
      const { remote, dataDir } = service!;
      const early = await answerBeforeBody(remote, 50 * 1024 * 1024);
      expect(early.status).toBe(401);
      expect(early.body.error).toMatchObject(UNAUTHORIZED_REMOTE);
      expect(early.body.error?.message).toContain('API_KEYS');
      expect(early.body.error?.message).toContain('OPEN_MODE_CLIENTS=any');

      const whole = await upload(remote, speech.wav, { language: 'en' });
      expect(whole.status).toBe(401);
      expect(whole.body.error).toMatchObject(UNAUTHORIZED_REMOTE);
      for (const target of [
        '/v1/jobs',
        '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA',
        '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA/events',
      ]) {
        const res = await getJson<Reply['body']>(`${remote}${target}`);
        expect(res.status, target).toBe(401);
        expect(res.body.error, target).toMatchObject(UNAUTHORIZED_REMOTE);
      }
      // The OpenAI-compatible route, in OpenAI's error shape (which has no details: the message says it).
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(1024)]), 'a.wav');
      form.append('model', 'whisper-1');
      const openai = await fetch(`${remote}/v1/audio/transcriptions`, {
        method: 'POST',
        headers: { authorization: 'Bearer anything' },
        body: form,
      });
      expect(openai.status).toBe(401);
      const openaiBody = (await openai.json()) as { error: { code: string; message: string } };
      expect(openaiBody.error.code).toBe('invalid_api_key');
      expect(openaiBody.error.message).toContain('OPEN_MODE_CLIENTS=any');
      expect(await jobFiles(dataDir)).toEqual([]);
    });

    it('shows a remote client the public view of /health, and its own machine the operator view', async () => {
      const { remote, port } = service!;
      const health = await getJson<{ view: string; config?: unknown }>(`${remote}/health`);
      expect([health.status, health.body.view, health.body.config]).toEqual([200, 'public', undefined]);
      expect((await getJson<{ view: string }>(`${remote}/health/ready`)).body.view).toBe('public');
      // A bearer from a remote client in open mode without METRICS_TOKEN guesses nothing and shows nothing more.
      const bearer = await getJson<{ view: string }>(`${remote}/health`, { authorization: `Bearer ${KEY}` });
      expect(bearer.body.view).toBe('public');
      // The public routes stay public: the page, the document, liveness.
      for (const target of ['/', '/docs/json', '/health/live'])
        expect((await fetch(`${remote}${target}`)).status, target).toBe(200);
      const local = await fromItsMachine(netns, host, port, '/health');
      expect([local.status, local.body.view]).toEqual([200, 'operator']);
    });

    it('ignores a forged X-Forwarded-For from a remote peer TRUST_PROXY does not name', async () => {
      const { remote } = service!;
      for (const forged of ['127.0.0.1', '::1', '127.0.0.1, 127.0.0.1']) {
        const res = await rawRequest(remote, {
          method: 'GET',
          target: '/v1/jobs',
          headers: { 'x-forwarded-for': forged },
        });
        expect(res.status, forged).toBe(401);
        expect(JSON.parse(res.body), forged).toMatchObject({ error: UNAUTHORIZED_REMOTE });
      }
    });

    it('refuses a remote client that a trusted proxy on its machine forwards, and serves its machine', async () => {
      const { port } = service!;
      const forwarded = await fromItsMachine(netns, host, port, '/v1/jobs', {
        'x-forwarded-for': netns.rootAddress,
      });
      expect(forwarded.status).toBe(401);
      expect(forwarded.body.error).toMatchObject(UNAUTHORIZED_REMOTE);
      const local = await fromItsMachine(netns, host, port, '/v1/jobs');
      expect([local.status, local.body]).toEqual([200, expect.objectContaining({ items: [] })]);
    });

    it("shows the 401's words on the upload page in a remote browser, and keeps nothing", async () => {
      const { remote, dataDir } = service!;
      userDataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-chromium-'));
      browser = await chromium.launchPersistentContext(userDataDir, {
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
        headless: true,
      });
      const page = await browser.newPage();
      await page.goto(`${remote}/`);
      await page.locator('body[data-ready="true"]').waitFor();
      await page.locator('#jobs-message', { hasText: 'serves clients on its own machine only' }).waitFor();
      await page.setInputFiles('#file', speech.wav);
      await page.getByRole('button', { name: 'Upload and transcribe' }).click();
      await page.locator('#error', { hasText: 'Error code: UNAUTHORIZED' }).waitFor();
      expect(await page.textContent('#error')).toContain('OPEN_MODE_CLIENTS=any');
      expect(await jobFiles(dataDir)).toEqual([]);
    });

    it('still serves after all that', async () => {
      const local = await fromItsMachine(netns, host, service!.port, '/v1/jobs');
      expect(local.status).toBe(200);
      expect((await fetch(`${service!.remote}/health/live`)).status).toBe(200);
    });
  });

  describe('OPEN_MODE_CLIENTS=any', () => {
    let service: Started | undefined;
    beforeAll(async () => {
      service = await start(netns, host, { OPEN_MODE_CLIENTS: 'any' });
    });
    afterAll(async () => stop(netns, host, service));

    it('serves a remote client as open mode always did, and says so at start', async () => {
      const { remote } = service!;
      const warning = service!.proc.lines.find((l) => l.includes('API_KEYS is not set'));
      expect(warning).toContain('OPEN to anyone who can reach this port');
      expect((await getJson(`${remote}/v1/jobs`)).status).toBe(200);
      expect((await getJson<{ view: string }>(`${remote}/health`)).body.view).toBe('operator');
      const dry = await upload(remote, speech.wav, { language: 'en', dry_run: 'true' });
      expect(dry.status).toBe(200);
    });
  });

  describe('API keys', () => {
    let service: Started | undefined;
    beforeAll(async () => {
      // OPEN_MODE_CLIENTS is not read with keys: every client needs one.
      service = await start(netns, host, { API_KEYS: KEY });
    });
    afterAll(async () => stop(netns, host, service));

    it('serves a remote client with a valid key, and refuses one without as before', async () => {
      const { remote, port } = service!;
      const auth = { authorization: `Bearer ${KEY}` };
      expect((await getJson(`${remote}/v1/jobs`, auth)).status).toBe(200);
      expect((await getJson<{ view: string }>(`${remote}/health`, auth)).body.view).toBe('tenant');
      const dry = await upload(remote, speech.wav, { language: 'en', dry_run: 'true' }, auth);
      expect(dry.status).toBe(200);
      const without = await getJson<Reply['body']>(`${remote}/v1/jobs`);
      expect(without.status).toBe(401);
      expect(without.body.error).toEqual({
        code: 'UNAUTHORIZED',
        message: 'Send a valid API key as `Authorization: Bearer <key>`.',
      });
      // Its own machine needs a key too.
      expect((await fromItsMachine(netns, host, port, '/v1/jobs')).status).toBe(401);
    });
  });
});
