import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fakeTranscript } from '../fake-openai/server.ts';
import { CLIPS, LIBRIVOX_DIR, speechFixture } from '../fixtures/speech.ts';
import { getJson, pollJob, upload, waitForJob, type JobJson } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

describe('jobs against a misbehaving provider', () => {
  const start = useFakeProviderService();

  it('stops a job after the first 401 when the key is revoked mid-job, sending nothing more', async () => {
    const { fake, server } = await start({ latencyMs: 100 }, { CHUNK_SECONDS: '3', TRANSCRIBE_CONCURRENCY: '1' });
    const created = await upload(server.url, speechFixture().wav);
    await pollJob(server.url, created.body.id, (job) => job.progress.chunks_done >= 1, 'a first chunk done', {
      everyMs: 30,
    });
    fake.setKey('sk-rotated');
    const final = await waitForJob(server.url, created.body.id);
    expect(final.status).toBe('failed');
    expect(final.error?.code).toBe('PROVIDER_AUTH');
    const sent = fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
    const firstRejected = sent.findIndex((r) => r.status === 401);
    expect(firstRejected).toBeGreaterThan(0);
    // Concurrency 1: nothing is sent after the first rejection.
    expect(sent.slice(firstRejected + 1)).toEqual([]);
    expect(final.progress.chunks_total).toBeGreaterThan(sent.length);
  });

  it('lets a short job finish while a long one still runs on the shared rate limit', async () => {
    // One request per 500 ms for everyone: the long job alone keeps the bucket busy for ~8 s, longer than the short
    // job's upload and validation take on a loaded machine (its wav chunks are stream-copied: slicing adds nothing).
    const { fake, server } = await start(
      { latencyMs: 150 },
      { CHUNK_SECONDS: '2', TRANSCRIBE_CONCURRENCY: '3', RATE_LIMIT_RPM: '120', RATE_LIMIT_BURST: '1' },
    );
    const long = await upload(server.url, speechFixture().wav);
    await pollJob(server.url, long.body.id, (job) => job.progress.chunks_done >= 2, 'two chunks of the long job done', {
      everyMs: 30,
    });
    const short = await upload(server.url, path.join(LIBRIVOX_DIR, `${CLIPS[1].id}.wav`));
    const shortDone = await waitForJob(server.url, short.body.id);
    expect(shortDone.status).toBe('completed');
    const longAtThatMoment = (await getJson<JobJson>(`${server.url}/v1/jobs/${long.body.id}`)).body;
    expect(longAtThatMoment.status).toBe('processing');
    expect(longAtThatMoment.progress.chunks_done).toBeLessThan(longAtThatMoment.progress.chunks_total);
    expect((await waitForJob(server.url, long.body.id)).status).toBe('completed');
    expect(fake.requests.filter((r) => r.status === 200 && r.sha1).length).toBe(
      longAtThatMoment.progress.chunks_total + shortDone.progress.chunks_total,
    );
  });
});

describe('the hallucination guard in a job', () => {
  const start = useFakeProviderService();

  it('re-transcribes a chunk whose text is a repetition loop, without its prompt, and keeps the sane answer', async () => {
    const seen = new Map<string, number>();
    const { fake, server } = await start(
      {
        transcript: ({ sha1, durationS }) => {
          const n = (seen.get(sha1) ?? 0) + 1;
          seen.set(sha1, n);
          const sane = fakeTranscript(sha1, durationS);
          if (n > 1) return sane;
          const loop = 'thank you '.repeat(20).trim();
          return { ...sane, text: loop, segments: [{ ...sane.segments[0]!, text: loop }] };
        },
      },
      { CHUNK_SECONDS: '10' },
    );
    const created = await upload(server.url, speechFixture().wav, { prompt: 'A reading of Sense and Sensibility.' });
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('completed');
    const sent = fake.requests.filter((r) => r.sha1 !== null);
    expect(sent.length).toBe(2 * job.progress.chunks_total);
    expect(sent.filter((r) => r.attempt === 0).every((r) => r.prompt !== null)).toBe(true);
    expect(sent.filter((r) => r.attempt === 1).every((r) => r.prompt === null)).toBe(true);
    const txt = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?format=txt`)).text();
    expect(txt).not.toContain('thank you');
    expect(txt).toMatch(/chunk-[0-9a-f]{8}-0/);
  });
});
