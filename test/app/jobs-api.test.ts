import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import {
  getJson,
  jobFiles,
  pollJob,
  registeredRoutes,
  removeDir,
  startServer,
  upload,
  waitForJob,
  type ErrorJson,
  type JobJson,
  type TestServer,
} from '../helper.ts';

const KEY_A = 'key-a-0123456789';
const KEY_B = 'key-b-0123456789';
const A = { authorization: `Bearer ${KEY_A}` };
const B = { authorization: `Bearer ${KEY_B}` };

describe('the jobs API', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI({ latencyMs: 0 });
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      API_KEYS: `${KEY_A},${KEY_B}`,
      CHUNK_SECONDS: '4',
      TRANSCRIBE_CONCURRENCY: '1',
      RATE_LIMIT_RPM: '6000',
    });
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
    await removeDir(server.dataDir);
  });

  it('answers 401 UNAUTHORIZED without a valid key, and health needs none', async () => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer nope' }, { authorization: KEY_A }];
    for (const headers of attempts) {
      const res = await getJson<ErrorJson>(`${server.url}/v1/jobs`, headers);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
    }
    expect((await upload(server.url, speech.wav)).status).toBe(401);
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
    const ready = await getJson<{ status: string; components: Record<string, { status: string; detail: string }> }>(
      `${server.url}/health/ready`,
    );
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.components).sort()).toEqual([
      'disk',
      'ffmpeg',
      'ffprobe',
      'job_dirs',
      'memory',
      'provider',
      'queue',
      'store',
    ]);
    expect(Object.values(ready.body.components).every((c) => c.status === 'ok' || c.status === 'degraded')).toBe(true);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("keeps each key's jobs invisible to every other key, and returns the same job for a repeated Idempotency-Key", async () => {
    const first = await upload(server.url, speech.wav, {}, { ...A, 'idempotency-key': 'same-1' });
    expect(first.status).toBe(202);
    const again = await upload(server.url, speech.wav, {}, { ...A, 'idempotency-key': 'same-1' });
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // The same key string from another API key is another job.
    const otherKey = await upload(server.url, speech.wav, {}, { ...B, 'idempotency-key': 'same-1' });
    expect(otherKey.status).toBe(202);
    expect(otherKey.body.id).not.toBe(first.body.id);

    const id = first.body.id;
    for (const path of [`/v1/jobs/${id}`, `/v1/jobs/${id}/transcript`]) {
      const res = await getJson<ErrorJson>(`${server.url}${path}`, B);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    expect((await fetch(`${server.url}/v1/jobs/${id}`, { method: 'DELETE', headers: B })).status).toBe(404);
    const listB = await getJson<{ items: JobJson[] }>(`${server.url}/v1/jobs`, B);
    expect(listB.body.items.map((j) => j.id)).toEqual([otherKey.body.id]);
    await waitForJob(server.url, id, A);
    await waitForJob(server.url, otherKey.body.id, B);
  });

  it("checks both keys on every /v1 route the app registers: each sees its own job and never the other's", async () => {
    const a = await upload(server.url, speech.wav, {}, { ...A, 'idempotency-key': 'every-route' });
    const b = await upload(server.url, speech.wav, {}, { ...B, 'idempotency-key': 'every-route' });
    expect([a.status, b.status]).toEqual([202, 202]);
    await waitForJob(server.url, a.body.id, A);
    await waitForJob(server.url, b.body.id, B);
    const jobs = [
      { id: a.body.id, own: A, other: B },
      { id: b.body.id, own: B, other: A },
    ];
    const call = (method: string, path: string, headers: Record<string, string>) =>
      fetch(`${server.url}${path}`, { method, headers });

    /** The OpenAI-compatible routes make jobs too: each is the key's own, in GET /v1/jobs/:id as any other. */
    const audioJobSeenOnlyByItsKey = async (route: 'transcriptions' | 'translations') => {
      for (const { own, other } of jobs) {
        const form = new FormData();
        form.append('file', new Blob([await readFile(speech.wav)]), 'speech.wav');
        form.append('model', 'whisper-1');
        const res = await fetch(`${server.url}/v1/audio/${route}`, { method: 'POST', headers: own, body: form });
        expect(res.status, route).toBe(200);
        expect(((await res.json()) as { text: string }).text, route).not.toBe('');
        const id = res.headers.get('x-job-id') ?? '';
        expect((await call('GET', `/v1/jobs/${id}`, own)).status, route).toBe(200);
        expect((await call('GET', `/v1/jobs/${id}`, other)).status, route).toBe(404);
      }
    };

    /** One check a route; a /v1 route without one fails the test below, so a new route cannot go unchecked. */
    const checks: Record<string, () => Promise<void>> = {
      'GET /v1/jobs': async () => {
        for (const { id, own, other } of jobs) {
          for (const q of ['', '?status=completed', '?limit=100']) {
            expect(
              (await getJson<{ items: JobJson[] }>(`${server.url}/v1/jobs${q}`, own)).body.items.map((j) => j.id),
            ).toContain(id);
            expect(
              (await getJson<{ items: JobJson[] }>(`${server.url}/v1/jobs${q}`, other)).body.items.map((j) => j.id),
            ).not.toContain(id);
          }
        }
      },
      'GET /v1/jobs/:id': async () => {
        for (const { id, own, other } of jobs) {
          expect((await call('GET', `/v1/jobs/${id}`, own)).status).toBe(200);
          const res = await getJson<ErrorJson>(`${server.url}/v1/jobs/${id}`, other);
          expect([res.status, res.body.error.code]).toEqual([404, 'NOT_FOUND']);
        }
      },
      'GET /v1/jobs/:id/transcript': async () => {
        for (const { id, own, other } of jobs) {
          for (const q of ['', '?format=txt', '?format=srt', '?format=vtt&partial=true']) {
            expect((await call('GET', `/v1/jobs/${id}/transcript${q}`, own)).status, q).toBe(200);
            const res = await getJson<ErrorJson>(`${server.url}/v1/jobs/${id}/transcript${q}`, other);
            expect([res.status, res.body.error.code], q).toEqual([404, 'NOT_FOUND']);
          }
        }
      },
      'GET /v1/jobs/:id/events': async () => {
        for (const { id, own, other } of jobs) {
          // The job has ended: its stream replays the text and the end event, then closes.
          const res = await call('GET', `/v1/jobs/${id}/events`, own);
          expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/event-stream']);
          expect(await res.text()).toContain('event: end');
          const refused = await getJson<ErrorJson>(`${server.url}/v1/jobs/${id}/events`, other);
          expect([refused.status, refused.body.error.code]).toEqual([404, 'NOT_FOUND']);
        }
      },
      'GET /v1/models': async () => {
        for (const { own } of jobs) {
          const res = await getJson<{ data: Array<{ id: string }> }>(`${server.url}/v1/models`, own);
          expect([res.status, res.body.data.map((m) => m.id)]).toEqual([200, expect.arrayContaining(['whisper-1'])]);
        }
      },
      'GET /v1/models/:id': async () => {
        for (const { own } of jobs) expect((await call('GET', '/v1/models/whisper-1', own)).status).toBe(200);
      },
      'POST /v1/audio/transcriptions': () => audioJobSeenOnlyByItsKey('transcriptions'),
      'POST /v1/audio/translations': () => audioJobSeenOnlyByItsKey('translations'),
      'POST /v1/jobs': async () => {
        // A repeated Idempotency-Key answers the caller's own job, never the other key's.
        for (const { id, own } of jobs) {
          const again = await upload(server.url, speech.wav, {}, { ...own, 'idempotency-key': 'every-route' });
          expect([again.status, again.body.id]).toEqual([202, id]);
        }
      },
      'DELETE /v1/jobs/:id': async () => {
        for (const { id, own, other } of jobs) {
          expect((await call('DELETE', `/v1/jobs/${id}`, other)).status).toBe(404);
          expect((await call('GET', `/v1/jobs/${id}`, own)).status).toBe(200);
        }
        for (const { id, own, other } of jobs) {
          expect((await call('DELETE', `/v1/jobs/${id}`, own)).status).toBe(204);
          expect((await call('GET', `/v1/jobs/${id}`, own)).status).toBe(404);
          expect((await call('DELETE', `/v1/jobs/${id}`, other)).status).toBe(404);
        }
      },
    };
    const v1Routes = registeredRoutes(server.app)
      .filter((r) => r.url.startsWith('/v1/'))
      .map((r) => `${r.method} ${r.url}`);
    expect(v1Routes.sort()).toEqual(Object.keys(checks).sort());
    // DELETE last: the other checks need the jobs.
    for (const route of [
      ...v1Routes.filter((r) => !r.startsWith('DELETE')),
      ...v1Routes.filter((r) => r.startsWith('DELETE')),
    ]) {
      await checks[route]?.();
    }
  });

  it('lists jobs newest first with cursor pagination and a status filter', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(server.url, speech.wav, {}, A)).body.id);
    for (const id of ids) await waitForJob(server.url, id, A);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      expect(++pages, 'pages of GET /v1/jobs').toBeLessThanOrEqual(1000);
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const page: { body: { items: JobJson[]; next_cursor: string | null } } = await getJson(
        `${server.url}/v1/jobs?limit=2${q}`,
        A,
      );
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((j) => j.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen.slice(0, 3)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
    const completed = await getJson<{ items: JobJson[] }>(`${server.url}/v1/jobs?status=completed&limit=100`, A);
    expect(completed.body.items.every((j) => j.status === 'completed')).toBe(true);
    const failed = await getJson<{ items: JobJson[] }>(`${server.url}/v1/jobs?status=failed`, A);
    expect(failed.body.items).toEqual([]);
  });

  it('refuses an unreadable cursor with 400 INVALID_FIELD instead of answering the first page', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    const validId = `job_${'A'.repeat(22)}`;
    for (const cursor of [
      'garbage!!',
      '%00%ff',
      b64('hello world'),
      b64('{"created_at":"2030-01-01T00:00:00.000Z","id":"job_x"}'),
      b64('2030-01-01T00:00:00.000Z|42'),
      b64(`1893456000000|${validId}`),
      b64(`yesterday|${validId}`),
      b64(`2030-01-01T00:00:00.000Z|${validId}|extra`),
      `${b64(`2030-01-01T00:00:00.000Z|${validId}`)}!`,
      'A'.repeat(400),
      'A'.repeat(5000),
    ]) {
      const res = await getJson<ErrorJson>(`${server.url}/v1/jobs?limit=2&cursor=${cursor}`, A);
      expect(res.status, cursor).toBe(400);
      expect(res.body.error, cursor).toMatchObject({ code: 'INVALID_FIELD', details: { field: 'cursor' } });
    }
    // A well-formed cursor past every job is an empty page, not an error; no cursor is the first page.
    const past = await getJson<{ items: JobJson[]; next_cursor: string | null }>(
      `${server.url}/v1/jobs?cursor=${b64(`1970-01-01T00:00:00.000Z|${validId}`)}`,
      A,
    );
    expect(past).toMatchObject({ status: 200, body: { items: [], next_cursor: null } });
    expect((await getJson(`${server.url}/v1/jobs?cursor=`, A)).status).toBe(200);
  });

  it('answers 409 JOB_NOT_COMPLETED before completion, serves partial text on request, and cancels with DELETE', async () => {
    fake.setLatency(400);
    try {
      const created = await upload(server.url, speech.wav, {}, A);
      const id = created.body.id;
      const job = await pollJob(server.url, id, (j) => j.progress.chunks_done >= 1, 'a first chunk done', {
        headers: A,
        everyMs: 50,
      });
      expect(job.status).toBe('processing');
      expect(job.stage).toBe('transcribing');
      expect(job.progress.eta_s).not.toBeNull();

      const early = await getJson<ErrorJson>(`${server.url}/v1/jobs/${id}/transcript`, A);
      expect(early.status).toBe(409);
      expect(early.body.error.code).toBe('JOB_NOT_COMPLETED');
      const partial = await fetch(`${server.url}/v1/jobs/${id}/transcript?format=txt&partial=true`, { headers: A });
      expect(partial.status).toBe(200);
      expect(await partial.text()).toMatch(/chunk-[0-9a-f]{8}-0/);

      const del = await fetch(`${server.url}/v1/jobs/${id}`, { method: 'DELETE', headers: A });
      expect(del.status).toBe(204);
      expect((await getJson(`${server.url}/v1/jobs/${id}`, A)).status).toBe(404);
      expect((await jobFiles(server.dataDir)).filter((f) => f.startsWith(id))).toEqual([]);
      const sentAfter = fake.requests.length;
      await new Promise((r) => setTimeout(r, 500));
      expect(fake.requests.length).toBe(sentAfter);
    } finally {
      fake.setLatency(0);
    }
  });

  it('serves the partial transcript of a failed job with a gap marker where a chunk failed, as the final one would', async () => {
    // Chunk 1 is refused every time (400, not retried): 1 of the job's chunks over MAX_FAILED_CHUNK_RATIO fails the job.
    fake.script((_, entry) => (entry.filename?.startsWith('chunk-00001') ? 'bad_audio' : undefined));
    try {
      const created = await upload(server.url, speech.wav, {}, A);
      expect(created.status).toBe(202);
      const job = await waitForJob(server.url, created.body.id, A);
      expect(job.status).toBe('failed');
      const res = await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=json&partial=true`, { headers: A });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-transcript-partial')).toBe('true');
      const transcript = (await res.json()) as { text: string; segments: Array<{ chunk: number; text: string }> };
      expect(transcript.segments.filter((s) => s.chunk === 1).map((s) => s.text)).toEqual([
        '[inaudible: chunk 1 failed]',
      ]);
      expect(transcript.segments.some((s) => s.chunk === 0 && s.text !== '')).toBe(true);
      expect(transcript.text).toContain('[inaudible: chunk 1 failed]');
    } finally {
      fake.script([]);
    }
  });
});
