import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Services } from '../../src/http/services.ts';
import type { App } from '../../src/http/app.ts';
import type { FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  removeDir,
  startServer,
  upload,
  waitForJob,
  type ErrorJson,
  type Json,
  type TestServer,
} from '../helper.ts';
import { openEvents, textsOf, type EventStreamClient } from '../support/event-stream-client.ts';
import { heldJobEnv, startHeldFakeOpenAI, type Hold } from '../support/held-fake-openai.ts';
import { until } from '../support/until.ts';

const KEY_A = 'key-a-0123456789';
const KEY_B = 'key-b-0123456789';
const KEY_C = 'key-c-0123456789';
const A = { authorization: `Bearer ${KEY_A}` };
const B = { authorization: `Bearer ${KEY_B}` };
const C = { authorization: `Bearer ${KEY_C}` };

interface Running {
  fake: FakeOpenAI;
  server: TestServer;
  app: App;
  services: Services;
  url: string;
  hold: Hold;
}

const started: Running[] = [];
const streams: EventStreamClient[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const r of started.splice(0)) {
    await r.server.close();
    await r.fake.close();
    await removeDir(r.server.dataDir);
  }
});

/** The service on a fake that answers chunk 0 and holds every later chunk until `hold.on` is turned off. */
async function start(env: Record<string, string> = {}): Promise<Running> {
  const { fake, hold } = await startHeldFakeOpenAI();
  const server = await startServer({ ...heldJobEnv(fake), ...env });
  const running = { fake, server, app: server.app, services: server.services, url: server.url, hold };
  started.push(running);
  return running;
}

async function open(url: string, id: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  const stream = await openEvents(url, id, headers);
  streams.push(stream);
  return stream;
}

const speech = speechFixture();

describe('GET /v1/jobs/{id}/events', () => {
  it('sends each chunk as it becomes final, while the job runs; resumed with Last-Event-ID it repeats and misses nothing', async () => {
    const s = await start();
    const created = await upload(s.url, speech.mp3);
    expect(created.status).toBe(202);
    const id = created.body.id;

    const first = await open(s.url, id);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // Chunk 0 is answered; every later chunk is held: its text can only have come while the job runs.
    const before = await first.readUntil((e) => e.event === 'text');
    expect(textsOf(before).map((t) => t.chunk)).toEqual([0]);
    const running = await getJson<{ status: string }>(`${s.url}/v1/jobs/${id}`);
    expect(running.body.status).toBe('processing');
    const lastId = before.at(-1)?.id;
    expect(lastId).toBe('1');

    // The client goes away: its follow ends (no timer, no count left behind).
    first.close();
    await until(() => s.services.feed.active() === 0, 'the follow of the closed stream to end');

    s.hold.on = false;
    const again = await open(s.url, id, { 'last-event-id': lastId as string });
    const after = await again.readUntil((e) => e.event === 'end');
    expect(await again.next()).toBeNull();
    expect(JSON.parse(after.at(-1)?.data ?? '')).toEqual({ status: 'completed', error: null });

    const chunks = [...textsOf(before), ...textsOf(after)].map((t) => t.chunk);
    expect(chunks).toEqual([...new Set(chunks)].sort((a, b) => a - b));
    const job = await waitForJob(s.url, id);
    const transcript = await getJson<{ text: string; segments: Array<{ chunk: number }> }>(
      `${s.url}/v1/jobs/${id}/transcript`,
    );
    expect(job.progress.chunks_total).toBeGreaterThanOrEqual(6);
    expect(chunks).toEqual([...new Set(transcript.body.segments.map((seg) => seg.chunk))]);
    expect([...textsOf(before), ...textsOf(after)].map((t) => t.text).join('')).toBe(transcript.body.text);
    await until(() => s.services.feed.active() === 0, 'the follow to end with the job');
  });

  it('is behind the keys and the owner: 401 without a valid key, 404 for another key, 400 for an id it did not give', async () => {
    const s = await start({ API_KEYS: `${KEY_A},${KEY_B}` });
    const created = await upload(s.url, speech.wav, {}, A);
    expect(created.status).toBe(202);
    const id = created.body.id;
    const cases: Array<[Record<string, string>, number, string]> = [
      [{}, 401, 'UNAUTHORIZED'],
      [{ authorization: 'Bearer nope' }, 401, 'UNAUTHORIZED'],
      [B, 404, 'NOT_FOUND'],
      [{ ...A, 'last-event-id': 'abc' }, 400, 'INVALID_FIELD'],
      [{ ...A, 'last-event-id': '999' }, 400, 'INVALID_FIELD'],
    ];
    for (const [headers, status, code] of cases) {
      const res = await fetch(`${s.url}/v1/jobs/${id}/events`, { headers });
      expect(res.status, JSON.stringify(headers)).toBe(status);
      expect(((await res.json()) as ErrorJson).error.code).toBe(code);
    }
    const unknown = await fetch(`${s.url}/v1/jobs/job_0123456789abcdefghijkl/events`, { headers: A });
    expect(unknown.status).toBe(404);
    expect(s.services.feed.active()).toBe(0);
    // Still serving: the owner gets the stream.
    const mine = await open(s.url, id, A);
    expect(mine.status).toBe(200);
    expect((await mine.next())?.event).toBe('progress');
  });

  it('is described in the OpenAPI document as an event stream with its header and refusals', async () => {
    const s = await start();
    const doc = await getJson<{ paths: Record<string, Record<string, Json>> }>(`${s.url}/docs/json`);
    const op = doc.body.paths['/v1/jobs/{id}/events']?.get as {
      operationId: string;
      parameters: Array<{ in: string; name: string }>;
      responses: Record<string, { content: Record<string, { example?: string }> }>;
    };
    expect(op.operationId).toBe('followJob');
    expect(op.parameters.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['header:last-event-id', 'path:id']);
    expect(Object.keys(op.responses['200']?.content ?? {})).toEqual(['text/event-stream']);
    expect(op.responses['200']?.content['text/event-stream']?.example).toMatch(/^id: 0\nevent: progress\ndata: \{/);
    expect(Object.keys(op.responses).sort()).toEqual(['200', '400', '401', '404', '429', '500']);
  });

  it('bounds the streams per key and per process with 429 RATE_LIMITED, and gives a slot back when a stream closes', async () => {
    const s = await start({
      API_KEYS: `${KEY_A},${KEY_B},${KEY_C}`,
      EVENT_STREAMS_PER_KEY_MAX: '1',
      EVENT_STREAMS_MAX: '2',
    });
    s.hold.from = 0;
    const jobs: string[] = [];
    for (const key of [A, B, C]) {
      const created = await upload(s.url, speech.wav, {}, key);
      expect(created.status).toBe(202);
      jobs.push(created.body.id);
    }
    const a = await open(s.url, jobs[0] as string, A);
    expect(a.status).toBe(200);
    const refusals: Array<[Record<string, string>, string, string]> = [
      [A, jobs[0] as string, 'concurrent_event_streams'],
      [C, jobs[2] as string, 'event_streams_full'],
    ];
    const b = await open(s.url, jobs[1] as string, B);
    expect(b.status).toBe(200);
    for (const [key, id, reason] of refusals) {
      const res = await fetch(`${s.url}/v1/jobs/${id}/events`, { headers: key });
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBe('30');
      const body = (await res.json()) as ErrorJson;
      expect(body.error.code).toBe('RATE_LIMITED');
      expect(body.error.details?.reason).toBe(reason);
    }
    a.close();
    await until(() => s.services.feed.active() === 1, 'the closed stream to give its slot back');
    const c = await open(s.url, jobs[2] as string, C);
    expect(c.status).toBe(200);
  });

  it('answers HEAD with the stream headers and no stream: no slot held, nothing left open', async () => {
    const s = await start({ API_KEYS: `${KEY_A},${KEY_B}`, EVENT_STREAMS_PER_KEY_MAX: '1' });
    s.hold.from = 0;
    const created = await upload(s.url, speech.wav, {}, A);
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    // A HEAD that held a stream would keep the key's only slot (and a socket) for the stream's lifetime.
    for (let i = 0; i < 3; i++) {
      const head = await fetch(`${s.url}/v1/jobs/${id}/events`, { method: 'HEAD', headers: A });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(await head.text()).toBe('');
    }
    expect(s.services.feed.active()).toBe(0);
    // The same checks as GET: no key, another key's job.
    expect((await fetch(`${s.url}/v1/jobs/${id}/events`, { method: 'HEAD' })).status).toBe(401);
    expect((await fetch(`${s.url}/v1/jobs/${id}/events`, { method: 'HEAD', headers: B })).status).toBe(404);
    const stream = await open(s.url, id, A);
    expect(stream.status).toBe(200);
    expect((await stream.next())?.event).toBe('progress');
  });

  it('closes a stream at its lifetime (heartbeats before), and the server closes with streams open', async () => {
    const s = await start({ EVENT_STREAM_MAX_S: '2', EVENT_HEARTBEAT_S: '1' });
    s.hold.from = 0;
    const created = await upload(s.url, speech.wav);
    const stream = await open(s.url, created.body.id);
    const events = await stream.readUntil(() => false);
    // Ended by its lifetime, not by the job: no end event, the client reconnects with the last id.
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.event === 'progress')).toBe(true);
    expect(stream.comments).toContain('heartbeat');
    const again = await open(s.url, created.body.id, { 'last-event-id': events.at(-1)?.id as string });
    expect((await again.next())?.event).toBe('progress');
    await s.app.close();
    expect(await again.next()).toBeNull();
    started.splice(started.indexOf(s), 1);
    await s.fake.close();
    await removeDir(s.server.dataDir);
  });

  it('closes a stream at its lifetime when the wall clock steps back an hour meanwhile', async () => {
    const s = await start({ EVENT_STREAM_MAX_S: '2', EVENT_HEARTBEAT_S: '1' });
    s.hold.from = 0;
    const created = await upload(s.url, speech.wav);
    const stream = await open(s.url, created.body.id);
    expect((await stream.next())?.event).toBe('progress');
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() - 3_600_000);
    try {
      // On the wall clock the lifetime (and the feed's next read) waited for it to catch up: an hour, past the
      // test's timeout. A guard, not a timing assertion.
      let ended = false;
      void stream
        .readUntil(() => false)
        .then(
          () => (ended = true),
          () => undefined,
        );
      await until(() => ended, 'the stream to end at its lifetime', { timeoutMs: 30_000 });
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('ends a failed job with its error and closes the stream', async () => {
    const s = await start();
    s.hold.on = false;
    s.fake.script(Array.from({ length: 20 }, () => 'auth' as const));
    const created = await upload(s.url, speech.wav);
    const stream = await open(s.url, created.body.id);
    const events = await stream.readUntil((e) => e.event === 'end');
    expect(await stream.next()).toBeNull();
    const end = JSON.parse(events.at(-1)?.data ?? '{}') as { status: string; error: { code: string } | null };
    expect(end).toMatchObject({ status: 'failed', error: { code: 'PROVIDER_AUTH' } });
    const job = await getJson<{ error: { code: string } }>(`${s.url}/v1/jobs/${created.body.id}`);
    expect(job.body.error.code).toBe('PROVIDER_AUTH');
  });
});
