import { readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, upload, waitForJob, type TestServer } from '../helper.ts';
import { until } from '../support/until.ts';
import { expectError, expectNothingLeft, multipart, postChunked } from './hostile-kit.ts';

const speech = speechFixture();

interface Ready {
  components: Record<string, { status: string; detail: string }>;
}

const poolDetail = async (server: TestServer): Promise<string> =>
  (await getJson<Ready>(`${server.url}/health/ready`)).body.components.job_dirs!.detail;

describe('job directory pool bounds over HTTP', () => {
  let server: TestServer | undefined;
  let fake: FakeOpenAI | undefined;
  afterEach(async () => {
    await server?.close();
    await removeDir(server?.dataDir ?? '');
    await fake?.close();
    server = undefined;
    fake = undefined;
  });

  async function start(env: Record<string, string>) {
    // Transcription requests stall: a job holds its lease for the whole test, until it is deleted.
    fake = await startFakeOpenAI({ faults: () => 'stall' });
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      PRESSURE_RETRY_AFTER_S: '17',
      SHUTDOWN_TIMEOUT_MS: '100',
      ...env,
    });
    return { server, fake };
  }

  it('refuses an upload past JOB_DIRS_MAX with 503 SERVER_BUSY and Retry-After, and takes it once the live job ends', async () => {
    const { server, fake } = await start({ JOB_DIRS_MAX: '1' });
    const live = await upload(server.url, speech.mp3);
    expect(live.status).toBe(202);
    await until(
      () => fake.requests.some((r) => r.path === '/v1/audio/transcriptions'),
      'the live job to reach the provider',
      { everyMs: 50 },
    );
    expect(await poolDetail(server)).toMatch(/^1 of 1 leased/);

    const refused = await upload(server.url, speech.mp3);
    expectError(refused, 503, 'SERVER_BUSY', { resource: 'job_dirs_leases' });
    expect(refused.headers.get('retry-after')).toBe('17');
    // The live job's directory is untouched and it is still running.
    await expectNothingLeft(server, [live.body.id]);
    expect((await getJson<{ status: string }>(`${server.url}/v1/jobs/${live.body.id}`)).body.status).toBe('processing');

    // Deleting (cancelling) the live job returns its lease.
    expect((await fetch(`${server.url}/v1/jobs/${live.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await poolDetail(server)).toMatch(/^0 of 1 leased, 0\.00 of/);

    fake.script(() => undefined);
    const next = await upload(server.url, speech.mp3);
    expect(next.status).toBe(202);
    expect((await waitForJob(server.url, next.body.id)).status).toBe('completed');
    // The completed job returned its lease too.
    await until(
      async () => (await poolDetail(server)).startsWith('0 of 1 leased'),
      'the completed job to return its lease',
      { everyMs: 50 },
    );
  });

  it('refuses an upload whose bytes would pass JOB_DIRS_MAX_BYTES, with or without Content-Length', async () => {
    const size = statSync(speech.mp3).size;
    const bound = String(Math.floor(size * 1.5));
    const { server } = await start({ MAX_UPLOAD_BYTES: bound, JOB_DIRS_MAX_BYTES: bound });
    const live = await upload(server.url, speech.mp3);
    expect(live.status).toBe(202);

    const declared = await upload(server.url, speech.mp3);
    expectError(declared, 503, 'SERVER_BUSY', { resource: 'job_dirs_bytes' });
    expect(declared.headers.get('retry-after')).toBe('17');

    // A chunked body has no length to check up front: it is refused when the received bytes pass the bound.
    const chunked = await postChunked(
      server,
      multipart([{ name: 'file', filename: 'speech.mp3', contentType: 'audio/mpeg', data: readFileSync(speech.mp3) }]),
    );
    expectError(chunked, 503, 'SERVER_BUSY', { resource: 'job_dirs_bytes' });
    expect(chunked.headers.get('retry-after')).toBe('17');
    await expectNothingLeft(server, [live.body.id]);
    expect((await getJson<{ status: string }>(`${server.url}/v1/jobs/${live.body.id}`)).body.status).toBe('processing');
  });
});
