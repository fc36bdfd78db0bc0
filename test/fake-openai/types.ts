import type { DurationProbe, FakeTranscript } from './audio.ts';
import type { FaultName, FaultSpec, RandomFaults } from './faults.ts';

export const FAKE_OPENAI_KEY = 'sk-fake-valid-key';

export interface RequestLogEntry {
  /** 0-based over every request the server saw. */
  index: number;
  /** Date.now() when the request arrived. */
  time: number;
  /** Date.now() when its body had been read (the client's upload done), null before. */
  receivedAt: number | null;
  /** Date.now() when it was answered, null before (and for drop/stall/client_closed). */
  answeredAt: number | null;
  /** The client's address: which host sent it, where the hosts are network namespaces. */
  remoteAddress: string | null;
  method: string;
  path: string;
  model: string | null;
  language: string | null;
  prompt: string | null;
  responseFormat: string | null;
  /** The timestamp_granularities[] fields sent (empty when none). */
  granularities: string[];
  filename: string | null;
  /** Size of the file part. */
  bytes: number | null;
  /** Hex sha1 of the file part. */
  sha1: string | null;
  durationS: number | null;
  /** Requests to the same path still unanswered when this one arrived: how many the client had in flight. */
  inFlight: number;
  /** How many earlier transcription requests carried the same bytes (0 on the first). */
  attempt: number;
  fault: FaultName | null;
  /** null until answered, and for drop/stall/client_closed. */
  status: number | null;
  outcome: 'pending' | 'answered' | 'dropped' | 'stalled' | 'client_closed';
  /** The transcript text a 200 carried. */
  text: string | null;
}

/** Decides the fault of one request; requestIndex counts that route's requests from 0. */
export type FaultScriptFn = (requestIndex: number, entry: RequestLogEntry) => FaultSpec | undefined;
export type FaultScript = FaultSpec[] | FaultScriptFn;
export type FakeRoute = 'transcriptions' | 'models';

export interface FakeOpenAIOptions {
  /** The address to listen on. @default 127.0.0.1 */
  host?: string;
  /** @default a free port */
  port?: number;
  /** The one accepted Bearer key; null accepts any. @default FAKE_OPENAI_KEY */
  apiKey?: string | null;
  /** @default the openai models of src/transcribe/models.ts */
  models?: readonly string[];
  /** Largest accepted file part. @default 25 MiB */
  maxBytes?: number;
  /** Delay before every answer (faults included). @default 0 */
  latencyMs?: number;
  /** Extra delay drawn uniformly from [0, jitterMs] with the seeded PRNG. @default 0 */
  jitterMs?: number;
  /**
   * Whether the latency counts the fake's own work on a transcription (reading the file's duration: a few ms for
   * a WAV or a plain mp3, ~60 ms of CPU for an ffprobe): false, the latency is waited after the form is read and
   * the duration is read after it; true, the answer leaves `latencyMs` after the body was read, or when the work
   * is done if later, as a remote provider's would whatever its own load (bench --fake-work-in-latency).
   * @default false
   */
  ownWorkInLatency?: boolean;
  /**
   * How a non-WAV file's duration is read: `in-process` counts a plain mp3's frames and asks ffprobe (a child
   * process and a temp file, ~60 ms of CPU for a 5 MB mp3) only for what that cannot tell; `ffprobe` asks it for
   * every non-WAV file, as the fake did before (bench --fake-ffprobe). @default 'in-process'
   */
  probeWith?: DurationProbe;
  /** Seed of the jitter PRNG. @default 1 */
  seed?: number;
  /** Transcription faults: a queue consumed in order (null = answer normally), or a function. */
  faults?: FaultScript;
  /** Random transcription faults for requests the script leaves alone. */
  random?: RandomFaults | null;
  /** Extra headers on a 200 transcription answer (rate-limit hints such as x-ratelimit-remaining-requests). */
  successHeaders?: (entry: RequestLogEntry) => Record<string, string> | undefined;
  /** The ISO-639-1 language verbose_json reports when the request names none. @default 'en' */
  detectedLanguage?: string;
  /** Override the transcript (default fakeTranscript(sha1, durationS)). */
  transcript?: (audio: { sha1: string; bytes: Buffer; durationS: number; model: string }) => FakeTranscript;
  /** Awaited before a transcription is answered (after the latency): a test holds requests with it. */
  gate?: (entry: RequestLogEntry) => Promise<void>;
}

export interface FakeOpenAI {
  /** Base URL including /v1, for the SDK's baseURL. */
  url: string;
  port: number;
  /** Live log, oldest first (reset() empties it in place). */
  requests: RequestLogEntry[];
  script(faults: FaultScript, route?: FakeRoute): void;
  setRandom(random: RandomFaults | null): void;
  setLatency(ms: number, jitterMs?: number): void;
  setKey(key: string | null): void;
  /** Back to the start options: empty log, scripts, key, latency, PRNGs, attempt counts. */
  reset(): void;
  close(): Promise<void>;
}
