import { afterEach } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from '../fake-openai/server.ts';
import { removeDir, startServer, type TestServer } from '../helper.ts';

export interface FakeProviderService {
  fake: FakeOpenAI;
  server: TestServer;
}

export type StartFakeProviderService = (
  fakeOptions?: FakeOpenAIOptions,
  env?: Record<string, string>,
) => Promise<FakeProviderService>;

/**
 * Our service on the openai engine against a fresh fake OpenAI server, started inside a test; everything started
 * is closed and its DATA_DIR removed after each test, also when the test failed half way.
 */
export function useFakeProviderService(defaults: Record<string, string> = {}): StartFakeProviderService {
  const started: Array<FakeOpenAI | TestServer> = [];
  afterEach(async () => {
    for (const s of started.splice(0).reverse()) {
      await s.close();
      if ('dataDir' in s) await removeDir(s.dataDir);
    }
  });
  return async (fakeOptions = {}, env = {}) => {
    const fake = await startFakeOpenAI(fakeOptions);
    started.push(fake);
    const server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      RATE_LIMIT_RPM: '6000',
      ...defaults,
      ...env,
    });
    started.push(server);
    return { fake, server };
  };
}
