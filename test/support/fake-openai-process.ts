import path from 'node:path';
import type { RequestLogEntry } from '../fake-openai/types.ts';
import { listeningLine, spawnNode } from './node-process.ts';
import type { Place } from './place.ts';

const MAIN = path.resolve(import.meta.dirname, '../fake-openai/main.ts');

export interface FakeOpenAIProcess {
  /** Base URL including /v1, for OPENAI_BASE_URL. */
  url: string;
  /** The server's request log now (every request with its arrival time, sender, chunk file name and sha1). */
  requests(): Promise<RequestLogEntry[]>;
  setLatency(ms: number): Promise<void>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The fake OpenAI server (test/fake-openai) as a process at `place` (another host: a network namespace) on `port`;
 * the test reads its log over HTTP on `controlPort`. Its key is FAKE_OPENAI_KEY.
 */
export async function startFakeOpenAIProcess(
  place: Place,
  opts: { port: number; controlPort: number; latencyMs?: number; jitterMs?: number },
): Promise<FakeOpenAIProcess> {
  const proc = spawnNode(MAIN, [JSON.stringify({ host: place.host, ...opts })], {
    place,
    name: 'the fake OpenAI server',
    ready: listeningLine,
  });
  const url = await proc.ready;
  const control = `http://${place.host}:${opts.controlPort}`;
  const post = async (what: string) => {
    const res = await fetch(`${control}${what}`, { method: 'POST' });
    if (res.status !== 204) throw new Error(`fake OpenAI control ${what}: ${res.status}`);
  };
  return {
    url,
    async requests() {
      const res = await fetch(`${control}/requests`);
      if (!res.ok) throw new Error(`fake OpenAI control /requests: ${res.status}`);
      return (await res.json()) as RequestLogEntry[];
    },
    setLatency: (ms) => post(`/latency?ms=${ms}`),
    reset: () => post('/reset'),
    close: () => proc.kill9(),
  };
}
