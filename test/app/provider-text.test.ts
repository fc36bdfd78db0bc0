import { describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { upload, waitForJob } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

/**
 * The provider's own words name the operator's account (OpenAI's rate-limit message names the organization, its
 * 401 a part of the key): a tenant whose job fails learns the class and the provider's code, never its text.
 * The fake answers as OpenAI does: "... in organization org-fake ...", "Incorrect API key provided: sk-fake***".
 */
describe('a job failed by the provider, as its tenant sees it', () => {
  const start = useFakeProviderService();
  const PROVIDER_WORDS = /org-fake|sk-fake|Rate limit reached|Incorrect API key|platform\.openai\.com/;

  it('names the class and code of a chunk that ran out of attempts on 429s, not the organization', async () => {
    const { fake, server } = await start(
      { faults: () => ({ type: 'rate_limit', retryAfterS: null }) },
      { CHUNK_SECONDS: '10', CHUNK_MAX_ATTEMPTS: '1' },
    );
    const created = await upload(server.url, speechFixture().wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(fake.requests.some((r) => r.status === 429)).toBe(true);
    expect(job.status).toBe('failed');
    expect(job.error?.message).toMatch(/rate_limit/);
    expect(job.error?.message).not.toMatch(PROVIDER_WORDS);
    const partial = await (await fetch(`${server.url}/v1/jobs/${job.id}/transcript?partial=true`)).text();
    expect(partial).not.toMatch(PROVIDER_WORDS);
  });

  it('names the class of a refused key, not the key', async () => {
    const { server } = await start({ faults: () => 'auth' }, { CHUNK_SECONDS: '10' });
    const created = await upload(server.url, speechFixture().wav);
    const job = await waitForJob(server.url, created.body.id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('PROVIDER_AUTH');
    expect(job.error?.message).toMatch(/auth/);
    expect(job.error?.message).not.toMatch(PROVIDER_WORDS);
  });
});
