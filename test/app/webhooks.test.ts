import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../../src/jobs/ids.ts';
import type { JobRecord, WebhookState } from '../../src/jobs/types.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  jobFiles,
  pollJob,
  removeDir,
  startServer,
  storeOf,
  tempDataDir,
  upload,
  waitForJob,
  type JobJson,
  type TestServer,
} from '../helper.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { jobRecord } from '../support/job-record.ts';

type Verify = (secret: string, headers: Record<string, unknown>, rawBody: string) => boolean;

/** The verification snippet exactly as docs/webhooks.md shows it, so the documented code is the tested code. */
async function documentedVerifier(): Promise<Verify> {
  const doc = readFileSync(path.resolve(import.meta.dirname, '../../docs/webhooks.md'), 'utf8');
  const snippet = /<!-- webhook-verify[^>]*-->\n```js\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!snippet) throw new Error('docs/webhooks.md has no webhook-verify snippet');
  const file = path.join(os.tmpdir(), `verify-webhook-${process.pid}-${Date.now()}.mjs`);
  writeFileSync(file, snippet);
  try {
    return ((await import(pathToFileURL(file).href)) as { verifyWebhook: Verify }).verifyWebhook;
  } finally {
    unlinkSync(file);
  }
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

type WebhookJob = JobJson & { webhook: WebhookState | null };

/** Polls until the delivery is settled (delivered or failed). */
function waitForWebhook(url: string, id: string): Promise<WebhookJob> {
  return pollJob<WebhookJob>(
    url,
    id,
    (job) => !!job.webhook && job.webhook.status !== 'pending',
    'the webhook delivery to settle',
    { everyMs: 50 },
  );
}

describe('webhooks to a receiver on 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE=true)', () => {
  let fake: FakeOpenAI;
  let receiver: WebhookReceiver;
  let server: TestServer;
  let verify: Verify;
  const secret = newSecret();
  const speech = speechFixture();

  beforeAll(async () => {
    verify = await documentedVerifier();
    fake = await startFakeOpenAI();
    receiver = await startWebhookReceiver();
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '600',
      WEBHOOK_SECRET: secret,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_MAX_ATTEMPTS: '3',
      WEBHOOK_RETRY_BASE_MS: '50',
      WEBHOOK_RETRY_MAX_MS: '200',
    });
  });
  afterEach(() => {
    fake.reset();
    receiver.received.length = 0;
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
    await fake.close();
    await removeDir(server.dataDir);
  });

  it('delivers the completed job, signed, on the retry after a 500, and shows the attempts on the job', async () => {
    receiver.answer([500]);
    const created = await upload(server.url, speech.wav, { callback_url: `${receiver.url}/hook` });
    expect(created.status).toBe(202);
    expect(created.body.webhook).toEqual({
      status: 'pending',
      attempts: 0,
      last_status_code: null,
      last_error: null,
      next_attempt_at: null,
    });
    const done = await waitForJob(server.url, created.body.id);
    expect(done.status).toBe('completed');

    const job = await waitForWebhook(server.url, created.body.id);
    expect(job.webhook).toEqual({
      status: 'delivered',
      attempts: 2,
      last_status_code: 200,
      last_error: null,
      next_attempt_at: null,
    });
    expect(receiver.received).toHaveLength(2);
    for (const hook of receiver.received) {
      expect(verify(secret, hook.headers, hook.body)).toBe(true);
      expect(hook.headers['webhook-id']).toBe(`${job.id}.completed`);
      expect(hook.headers['content-type']).toBe('application/json');
    }
    const [first, second] = receiver.received;
    const payload = JSON.parse(second!.body) as { type: string; timestamp: string; data: WebhookJob };
    expect(payload.type).toBe('job.completed');
    expect(payload.data).toMatchObject({
      id: job.id,
      status: 'completed',
      links: { transcript: `/v1/jobs/${job.id}/transcript` },
    });
    expect(payload.data.progress.percent).toBe(100);
    expect(payload.data).not.toHaveProperty('webhook');
    // The check can fail: another secret, a changed body, or another message's signature.
    expect(verify(newSecret(), second!.headers, second!.body)).toBe(false);
    expect(verify(secret, second!.headers, second!.body.replace('completed', 'failed'))).toBe(false);
    expect(
      verify(
        secret,
        { ...second!.headers, 'webhook-timestamp': String(Number(second!.headers['webhook-timestamp']) - 1) },
        second!.body,
      ),
    ).toBe(false);
    expect(first!.body).not.toBe(second!.body);
    expect(verify(secret, first!.headers, second!.body)).toBe(false);
  });

  it('gives up after WEBHOOK_MAX_ATTEMPTS and records the last answer', async () => {
    receiver.answer([500, 502, 503]);
    const created = await upload(server.url, speech.wav, { callback_url: `${receiver.url}/hook` });
    const job = await waitForWebhook(server.url, created.body.id);
    expect(job.webhook).toEqual({
      status: 'failed',
      attempts: 3,
      last_status_code: 503,
      last_error: 'the receiver answered HTTP 503',
      next_attempt_at: null,
    });
    expect(receiver.received).toHaveLength(3);
  });

  it('delivers job.failed for a job that fails', async () => {
    fake.script(['quota']);
    const created = await upload(server.url, speech.wav, { callback_url: `${receiver.url}/hook` });
    const job = await waitForWebhook(server.url, created.body.id);
    expect(job.status).toBe('failed');
    expect(job.webhook).toMatchObject({ status: 'delivered', attempts: 1 });
    const payload = JSON.parse(receiver.received[0]!.body) as { type: string; data: WebhookJob };
    expect(payload.type).toBe('job.failed');
    expect(payload.data.error?.code).toBe('PROVIDER_QUOTA');
    expect(verify(secret, receiver.received[0]!.headers, receiver.received[0]!.body)).toBe(true);
  });
});

/** A completed job written straight into a DATA_DIR's store, as a previous process would have left it. */
async function storeEndedJob(dataDir: string, callbackUrl: string, webhook: WebhookState | null): Promise<string> {
  const store = await storeOf(dataDir);
  const now = new Date().toISOString();
  const id = newJobId();
  const base = jobRecord(id, 'completed', now);
  const job: JobRecord = {
    ...base,
    createdAt: now,
    updatedAt: now,
    audio: { ...base.audio, size_bytes: 1000, duration_s: 3 },
    request: { ...base.request, callback_url: callbackUrl },
    estimate: { ...base.estimate, cost_usd: 0.0003 },
    slicingDone: true,
    percent: 100,
    transcribingStartedAt: now,
  };
  await store.insertJob(job);
  if (webhook) await store.updateJob(id, { webhook });
  await store.close();
  return id;
}

describe('webhooks by default (private addresses refused)', () => {
  let fake: FakeOpenAI;
  let receiver: WebhookReceiver;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver.close();
    await fake.close();
  });
  const env = () => ({ OPENAI_API_KEY: FAKE_OPENAI_KEY, OPENAI_BASE_URL: fake.url, WEBHOOK_SECRET: newSecret() });

  it('refuses loopback, private, link-local and localhost callback URLs at upload with 400 INVALID_FIELD', async () => {
    const server = await startServer(env());
    try {
      // The URL and what the message must say; an IPv6 address that carries an IPv4 one is judged by it.
      for (const [url, says] of [
        [`${receiver.url}/hook`, 'a loopback address'],
        ['http://10.1.2.3/hook', 'a private address'],
        ['http://169.254.169.254/latest/meta-data', 'a linkLocal address'],
        ['http://[::1]:8080/hook', 'a loopback address'],
        ['http://[fd00::1]/hook', 'a uniqueLocal address'],
        [`http://localhost:${receiver.port}/hook`, 'localhost'],
        [`http://[::127.0.0.1]:${receiver.port}/hook`, 'embedding 127.0.0.1, a loopback address'],
        ['http://[::a00:1]/hook', 'embedding 10.0.0.1, a private address'],
        [`http://[::ffff:127.0.0.1]:${receiver.port}/hook`, 'embedding 127.0.0.1, a loopback address'],
        ['http://[64:ff9b::a9fe:a9fe]/latest/meta-data', 'embedding 169.254.169.254, a linkLocal address'],
        ['http://[2002:c0a8:101::1]/hook', 'embedding 192.168.1.1, a private address'],
        ['http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook', 'embedding 127.0.0.1, a loopback address'],
      ] as const) {
        const res = await upload(server.url, speech.wav, { callback_url: url });
        expect(res.status, url).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'INVALID_FIELD', details: { field: 'callback_url' } });
        expect(res.body.error.message, url).toContain(says);
      }
      expect(await jobFiles(server.dataDir)).toEqual([]);
      expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
      expect(receiver.received).toEqual([]);
    } finally {
      await server.close();
      await removeDir(server.dataDir);
    }
  });

  it('refuses a callback_url on a port other than 80 and 443 at upload with 400 INVALID_FIELD (WEBHOOK_PORTS)', async () => {
    const server = await startServer(env());
    try {
      for (const [url, port] of [
        ['http://93.184.216.34:8080/hook', 8080],
        ['https://hooks.example.com:25/hook', 25],
        ['http://[2606:4700::1111]:6379/hook', 6379],
      ] as const) {
        const res = await upload(server.url, speech.wav, { callback_url: url });
        expect(res.status, url).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'INVALID_FIELD', details: { field: 'callback_url' } });
        expect(res.body.error.message).toBe(
          `callback_url uses port ${port}; this server sends callbacks to ports 80, 443 only (WEBHOOK_PORTS)`,
        );
      }
      expect(await jobFiles(server.dataDir)).toEqual([]);
      expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    } finally {
      await server.close();
      await removeDir(server.dataDir);
    }
  });

  it('refuses at delivery a port WEBHOOK_PORTS no longer lists, without making a request', async () => {
    // Accepted while every port was open (private receivers), delivered after the operator narrowed the list.
    const dataDir = await tempDataDir();
    const id = await storeEndedJob(dataDir, `${receiver.url}/hook`, null);
    const server = await startServer({ ...env(), WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_PORTS: '443' }, dataDir);
    try {
      const job = await waitForWebhook(server.url, id);
      expect(job.webhook).toMatchObject({ status: 'failed', attempts: 1, last_status_code: null });
      expect(job.webhook?.last_error).toBe(
        `refused: callback_url uses port ${receiver.port}; this server sends callbacks to port 443 only (WEBHOOK_PORTS)`,
      );
      expect(receiver.received).toEqual([]);
    } finally {
      await server.close();
      await removeDir(dataDir);
    }
  });

  it('refuses any callback_url when WEBHOOK_SECRET is not set', async () => {
    const server = await startServer({ OPENAI_API_KEY: FAKE_OPENAI_KEY, OPENAI_BASE_URL: fake.url });
    try {
      const res = await upload(server.url, speech.wav, { callback_url: 'https://hooks.example.com/done' });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'INVALID_FIELD', details: { field: 'callback_url' } });
      expect(await jobFiles(server.dataDir)).toEqual([]);
    } finally {
      await server.close();
      await removeDir(server.dataDir);
    }
  });

  it('refuses at delivery a host name that resolves to loopback, without making a request', async () => {
    const dataDir = await tempDataDir();
    const id = await storeEndedJob(dataDir, `http://localhost:${receiver.port}/hook`, null);
    // Every port: the receiver's is not one of the web's, and this is about where the name leads.
    const server = await startServer({ ...env(), WEBHOOK_PORTS: 'any' }, dataDir);
    try {
      const job = await waitForWebhook(server.url, id);
      expect(job.webhook).toMatchObject({
        status: 'failed',
        attempts: 1,
        last_status_code: null,
        next_attempt_at: null,
      });
      expect(job.webhook?.last_error).toMatch(/^refused: localhost resolves to a loopback address$/);
      expect(receiver.received).toEqual([]);
    } finally {
      await server.close();
      await removeDir(dataDir);
    }
  });
});

describe('webhooks across a restart', () => {
  it('resumes a pending delivery and starts one the previous process never started', async () => {
    const receiver = await startWebhookReceiver();
    const dataDir = await tempDataDir();
    const secret = newSecret();
    const pending = await storeEndedJob(dataDir, `${receiver.url}/a`, {
      status: 'pending',
      attempts: 1,
      last_status_code: 500,
      last_error: 'the receiver answered HTTP 500',
      next_attempt_at: new Date(Date.now() - 1000).toISOString(),
    });
    const unstarted = await storeEndedJob(dataDir, `${receiver.url}/b`, null);
    const server = await startServer({ WEBHOOK_SECRET: secret, WEBHOOK_ALLOW_PRIVATE: 'true' }, dataDir);
    try {
      expect((await waitForWebhook(server.url, pending)).webhook).toMatchObject({
        status: 'delivered',
        attempts: 2,
        last_status_code: 200,
      });
      expect((await waitForWebhook(server.url, unstarted)).webhook).toMatchObject({
        status: 'delivered',
        attempts: 1,
        last_status_code: 200,
      });
      expect(receiver.received.map((r) => r.headers['webhook-id']).sort()).toEqual(
        [`${pending}.completed`, `${unstarted}.completed`].sort(),
      );
      const verify = await documentedVerifier();
      expect(receiver.received.every((r) => verify(secret, r.headers, r.body))).toBe(true);
    } finally {
      await server.close();
      await receiver.close();
      await removeDir(dataDir);
    }
  });
});
