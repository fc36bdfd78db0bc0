import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';

/** While `on`, every transcription request from the `from`-th (0-based) is answered 429 with Retry-After 1 s. */
export interface Hold {
  on: boolean;
  from: number;
}

/**
 * A fake OpenAI server that holds a job part way, for as long as the test says: the first `from` chunks are
 * answered, every later one waits until `hold.on` is turned off. What a client sees meanwhile came while the job
 * ran, without a single timing assumption.
 */
export async function startHeldFakeOpenAI(from = 1): Promise<{ fake: FakeOpenAI; hold: Hold }> {
  const hold: Hold = { on: true, from };
  const fake = await startFakeOpenAI({
    faults: (i) => (hold.on && i >= hold.from ? { type: 'rate_limit', retryAfterS: 1 } : null),
  });
  return { fake, hold };
}

/**
 * Service settings for a held job: the openai engine on that fake, 4 s chunks of the speech fixture sent one at a
 * time in order, attempts enough to outlast the hold, event streams that look often, and a close that stops held
 * jobs instead of waiting for them.
 */
export function heldJobEnv(fake: FakeOpenAI): Record<string, string> {
  return {
    OPENAI_API_KEY: FAKE_OPENAI_KEY,
    OPENAI_BASE_URL: fake.url,
    CHUNK_SECONDS: '4',
    CHUNK_OVERLAP_SECONDS: '0',
    TRANSCRIBE_CONCURRENCY: '1',
    RATE_LIMIT_RPM: '6000',
    RATE_LIMIT_BURST: '50',
    CHUNK_MAX_ATTEMPTS: '50',
    EVENT_POLL_MS: '50',
    SHUTDOWN_TIMEOUT_MS: '500',
  };
}
