import path from 'node:path';
import type { FakeOpenAIOptions, RequestLogEntry } from '../fake-openai/types.ts';
import { listeningLine, spawnNode } from './node-process.ts';
import type { Place } from './place.ts';

const MAIN = path.resolve(import.meta.dirname, '../fake-openai/main.ts');

export interface FakeOpenAIProcess {
  /** Base URL including /v1, for OPENAI_BASE_URL. */
  url: string;
  /** The process's id (its CPU time is in /proc/<pid>/stat). */
  pid: number;
  /** The server's request log now (every request with its arrival time, sender, chunk file name and sha1). */
  requests(): Promise<RequestLogEntry[]>;
  setLatency(ms: number): Promise<void>;
  /** Transcription requests from this address are read but not answered from now on, until release(address). */
  hold(address: string): Promise<void>;
  /** Answers the held requests from this address, and those that come after. */
  release(address: string): Promise<void>;
  /** The log indexes of the requests held now. */
  held(): Promise<number[]>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The fake OpenAI server (test/fake-openai) as a process at `place` (another host: a network namespace) on `port`;
 * the test reads its log over HTTP on `controlPort`. Its key is FAKE_OPENAI_KEY.
 */
export async function startFakeOpenAIProcess(
  place: Place,
  opts: { port: number; controlPort: number } & Pick<
    FakeOpenAIOptions,
    'latencyMs' | 'jitterMs' | 'ownWorkInLatency' | 'probeWith'
  >,
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
  const get = async <T>(what: string): Promise<T> => {
    const res = await fetch(`${control}${what}`);
    if (!res.ok) throw new Error(`fake OpenAI control ${what}: ${res.status}`);
    return (await res.json()) as T;
  };
  return {
    url,
    pid: proc.child.pid ?? 0,
    requests: () => get<RequestLogEntry[]>('/requests'),
    setLatency: (ms) => post(`/latency?ms=${ms}`),
    hold: (address) => post(`/hold?from=${encodeURIComponent(address)}`),
    release: (address) => post(`/release?from=${encodeURIComponent(address)}`),
    held: () => get<number[]>('/held'),
    reset: () => post('/reset'),
    close: () => proc.kill9(),
  };
}
