import { describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { jobFiles, removeDir, startServer, upload, waitForJob } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';
import { until } from '../support/until.ts';
import { expectError } from './hostile-kit.ts';

const modelChecks = (fake: FakeOpenAI) => fake.requests.filter((r) => r.method === 'GET' && r.path === '/v1/models');

describe('the provider check kept off the upload path', () => {
  const start = useFakeProviderService();

  it('asks the provider at start, so the first upload is admitted on that answer without asking again', async () => {
    const { fake, server } = await start({ latencyMs: 50 }, { CHUNK_SECONDS: '4' });
    // No upload yet: the check was started by the service itself.
    await until(() => modelChecks(fake).some((r) => r.status === 200), 'the check started at service start', {
      timeoutMs: 10_000,
    });
    const created = await upload(server.url, speechFixture().mp3);
    expect(created.status).toBe(202);
    expect((await waitForJob(server.url, created.body.id)).status).toBe('completed');
    expect(modelChecks(fake)).toHaveLength(1);
  });

  it('refuses an upload on the answer from start while that says the key is refused', async () => {
    const fake = await startFakeOpenAI();
    fake.script(() => 'auth', 'models');
    const server = await startServer({ OPENAI_API_KEY: FAKE_OPENAI_KEY, OPENAI_BASE_URL: fake.url });
    try {
      await until(() => modelChecks(fake).some((r) => r.status === 401), 'the check started at service start', {
        timeoutMs: 10_000,
      });
      const refused = await upload(server.url, speechFixture().mp3);
      expectError(refused, 502, 'PROVIDER_AUTH');
      // The down answer is used as it is (not asked again), and nothing reached the provider.
      expect(modelChecks(fake)).toHaveLength(1);
      expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toEqual([]);
      expect(await jobFiles(server.dataDir)).toEqual([]);
      // Still serving, and not ready: the default backend is down.
      const ready = await fetch(`${server.url}/health/ready`);
      expect(ready.status).toBe(503);
      await ready.body?.cancel();
    } finally {
      await server.close();
      await fake.close();
      await removeDir(server.dataDir);
    }
  });
});
