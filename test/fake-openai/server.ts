import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { findModel, modelsFor } from '../../src/transcribe/models.ts';
import { OPENAI_MAX_BYTES } from '../../src/transcribe/providers/openai/models.ts';
import { audioDurationS, fakeTranscript } from './audio.ts';
import { errorJson, httpFault, seededRandom, toFault, tooLarge } from './faults.ts';
import type { Fault, FaultSpec, HttpFault, RandomFaults } from './faults.ts';
import { readForm } from './form.ts';
import type { ParsedForm } from './form.ts';
import {
  asTranslation,
  badRequest,
  drain,
  invalidFields,
  JSON_TYPE,
  tooLong,
  transcriptionResponse,
} from './responses.ts';
import { FAKE_OPENAI_KEY } from './types.ts';
import type { FakeOpenAI, FakeOpenAIOptions, FakeRoute, FaultScript, RequestLogEntry } from './types.ts';

export { fakeTranscript, SEGMENT_S } from './audio.ts';
export type { DurationProbe, FakeTranscript } from './audio.ts';
export type { Fault, FaultName, FaultSpec, RandomFaults } from './faults.ts';
export { FAKE_OPENAI_KEY } from './types.ts';
export type { FakeOpenAI, FakeOpenAIOptions, FakeRoute, FaultScript, FaultScriptFn, RequestLogEntry } from './types.ts';

// Multipart framing and text fields around the file part never come near this.
const FORM_OVERHEAD = 1024 * 1024;
const DEFAULT_RANDOM: FaultSpec[] = ['rate_limit', { type: 'server_error', status: 503 }, 'drop'];

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const models = options.models ?? modelsFor('openai');
  const maxBytes = options.maxBytes ?? OPENAI_MAX_BYTES;
  const probeWith = options.probeWith ?? 'in-process';
  const requests: RequestLogEntry[] = [];
  const timers = new Map<NodeJS.Timeout, () => void>();
  let key: string | null = null;
  let latency = { ms: 0, jitterMs: 0 };
  let jitterRng = seededRandom(1);
  let random: { cfg: RandomFaults; rng: () => number } | null = null;
  const scripts: Record<FakeRoute, FaultScript> = { transcriptions: [], models: [] };
  const counts: Record<FakeRoute, number> = { transcriptions: 0, models: 0 };
  const attempts = new Map<string, number>();

  function setRandom(cfg: RandomFaults | null): void {
    random = cfg ? { cfg, rng: seededRandom(cfg.seed) } : null;
  }
  function reset(): void {
    requests.length = 0;
    key = options.apiKey === undefined ? FAKE_OPENAI_KEY : options.apiKey;
    latency = { ms: options.latencyMs ?? 0, jitterMs: options.jitterMs ?? 0 };
    jitterRng = seededRandom(options.seed ?? 1);
    scripts.transcriptions = Array.isArray(options.faults) ? [...options.faults] : (options.faults ?? []);
    scripts.models = [];
    counts.transcriptions = 0;
    counts.models = 0;
    attempts.clear();
    setRandom(options.random ?? null);
  }
  reset();

  function pickFault(route: FakeRoute, entry: RequestLogEntry): Fault | null {
    const i = counts[route]++;
    const s = scripts[route];
    const scripted = typeof s === 'function' ? toFault(s(i, entry)) : toFault(s.shift());
    if (scripted || route !== 'transcriptions' || !random) return scripted;
    if (random.rng() >= random.cfg.probability) return null;
    const pool = random.cfg.faults ?? DEFAULT_RANDOM;
    return toFault(pool[Math.floor(random.rng() * pool.length)]);
  }

  /** The latency, less what has passed since `since` (a Date.now()) when given. */
  function delay(since?: number): Promise<void> {
    const ms = latency.ms + latency.jitterMs * jitterRng() - (since === undefined ? 0 : Date.now() - since);
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.set(t, resolve);
    });
  }

  function send(
    res: http.ServerResponse,
    entry: RequestLogEntry,
    status: number,
    headers: Record<string, string>,
    body: string,
  ): void {
    if (res.destroyed || res.writableEnded) return;
    entry.status = status;
    entry.outcome = 'answered';
    entry.answeredAt = Date.now();
    res.writeHead(status, headers).end(body);
  }
  const reply = (res: http.ServerResponse, entry: RequestLogEntry, f: HttpFault): void =>
    send(res, entry, f.status, f.headers, f.body);

  /** Answers 200 with a transcript of about `bytes` bytes of text (without end when Infinity), as fast as it is read. */
  function flood(res: http.ServerResponse, entry: RequestLogEntry, bytes: number): void {
    // Pending until all was sent: a client that hangs up first leaves it client_closed.
    entry.status = 200;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"text":"');
    const piece = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        if (res.destroyed) return;
        sent += piece.length;
        if (!res.write(piece)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end('"}', () => {
        entry.outcome = 'answered';
        entry.answeredAt = Date.now();
      });
    };
    pump();
  }

  /** Applies a fault: true when the request got one (and is now answered, dropped or stalled). */
  function applyFault(res: http.ServerResponse, entry: RequestLogEntry, fault: Fault | null): boolean {
    if (!fault) return false;
    if (fault.type === 'drop') {
      entry.outcome = 'dropped';
      res.socket?.destroy();
      return true;
    }
    if (fault.type === 'stall') {
      entry.outcome = 'stalled';
      return true;
    }
    if (fault.type === 'flood') {
      flood(res, entry, fault.bytes ?? Infinity);
      return true;
    }
    const f = httpFault(fault, entry.model, entry.bytes);
    if (f) reply(res, entry, f);
    return true;
  }

  /**
   * The form of an upload, read as it streams in (see form.ts); null when the request was answered instead (413,
   * 400) or its client left. `receivedAt` is when the body ended.
   */
  async function readUpload(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: RequestLogEntry,
  ): Promise<ParsedForm | null> {
    const read = await readForm(req, maxBytes + FORM_OVERHEAD);
    entry.receivedAt = Date.now();
    if (read.kind === 'form') return read.form;
    if (read.kind === 'oversize') reply(res, entry, tooLarge(read.total, maxBytes));
    if (read.kind === 'bad') reply(res, entry, badRequest('Could not parse multipart form', null, null));
    return null;
  }

  async function transcriptions(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: RequestLogEntry,
  ): Promise<void> {
    const form = await readUpload(req, res, entry);
    if (!form) return;
    const file = form.file;
    const audio = file?.audio ?? null;
    entry.model = form.field('model');
    entry.language = form.field('language');
    entry.prompt = form.field('prompt');
    entry.responseFormat = form.field('response_format');
    entry.granularities = form.fields('timestamp_granularities[]');
    entry.filename = file?.name ?? null;
    if (file) {
      entry.bytes = file.audio.length;
      entry.sha1 = file.sha1;
      entry.attempt = attempts.get(file.sha1) ?? 0;
      attempts.set(file.sha1, entry.attempt + 1);
      if (file.audio.length > maxBytes) return reply(res, entry, tooLarge(form.total, maxBytes));
    }
    const fault = pickFault('transcriptions', entry);
    entry.fault = fault?.type ?? null;
    const early = options.ownWorkInLatency && audio ? audioDurationS(audio, probeWith) : null;
    if (early) entry.durationS = await early;
    await delay(options.ownWorkInLatency ? (entry.receivedAt ?? undefined) : undefined);
    await options.gate?.(entry);
    if (applyFault(res, entry, fault)) return;

    const format = entry.responseFormat ?? 'json';
    const info = entry.model ? findModel('openai', entry.model) : undefined;
    const invalid = invalidFields({ hasFile: audio !== null, model: entry.model, format }, models, info);
    if (invalid || !audio || !entry.sha1 || !entry.model)
      return reply(res, entry, invalid ?? badRequest('Invalid request', null, null));
    const durationS = await (early ?? audioDurationS(audio, probeWith));
    entry.durationS = durationS;
    if (durationS === null) {
      applyFault(res, entry, { type: 'bad_audio' });
      return;
    }
    const long = tooLong(info, durationS);
    if (long) return reply(res, entry, long);
    const t = options.transcript
      ? options.transcript({ sha1: entry.sha1, bytes: audio.joined(), durationS, model: entry.model })
      : fakeTranscript(entry.sha1, durationS);
    entry.text = t.text;
    const ok = transcriptionResponse(format, info, t, durationS, entry.language, {
      granularities: entry.granularities,
      ...(options.detectedLanguage === undefined ? {} : { detectedLanguage: options.detectedLanguage }),
    });
    reply(res, entry, { ...ok, headers: { ...ok.headers, ...options.successHeaders?.(entry) } });
  }

  /**
   * POST /v1/audio/translations: whisper-1 only, as OpenAI; each segment of the fake transcript as `en-<tag>-<i>`
   * so a test sees which endpoint answered. No faults or latency: the transcriptions route has those.
   */
  async function translations(req: http.IncomingMessage, res: http.ServerResponse, entry: RequestLogEntry) {
    const form = await readUpload(req, res, entry);
    if (!form) return;
    const file = form.file;
    if (!file) return reply(res, entry, badRequest('Could not parse multipart form', null, null));
    entry.model = form.field('model');
    entry.prompt = form.field('prompt');
    entry.responseFormat = form.field('response_format');
    entry.bytes = file.audio.length;
    entry.sha1 = file.sha1;
    if (form.has('language'))
      return reply(res, entry, badRequest('Unrecognized request argument supplied: language', 'language', null));
    if (entry.model !== 'whisper-1') {
      return reply(
        res,
        entry,
        badRequest(`Invalid model ${entry.model ?? ''} for translations.`, 'model', 'invalid_value'),
      );
    }
    const durationS = await audioDurationS(file.audio, probeWith);
    if (durationS === null) return void applyFault(res, entry, { type: 'bad_audio' });
    entry.durationS = durationS;
    const original = fakeTranscript(file.sha1, durationS);
    const segments = original.segments.map((seg) => ({ ...seg, text: `en-${seg.text}` }));
    const t = { ...original, text: segments.map((seg) => seg.text).join(' '), segments };
    entry.text = t.text;
    const ok = transcriptionResponse(
      entry.responseFormat ?? 'json',
      findModel('openai', 'whisper-1'),
      t,
      durationS,
      'en',
    );
    reply(res, entry, entry.responseFormat === 'verbose_json' ? asTranslation(ok) : ok);
  }

  async function modelsRoute(res: http.ServerResponse, entry: RequestLogEntry): Promise<void> {
    const fault = pickFault('models', entry);
    entry.fault = fault?.type ?? null;
    await delay();
    if (applyFault(res, entry, fault)) return;
    const data = models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'openai' }));
    send(res, entry, 200, JSON_TYPE, JSON.stringify({ object: 'list', data }));
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse, entry: RequestLogEntry): Promise<void> {
    const { path } = entry;
    const auth = req.headers.authorization ?? '';
    if (key !== null && auth !== `Bearer ${key}`) {
      await drain(req);
      const message =
        auth === ''
          ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth."
          : 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.';
      return send(
        res,
        entry,
        401,
        JSON_TYPE,
        errorJson(message, 'invalid_request_error', null, auth === '' ? null : 'invalid_api_key'),
      );
    }
    if (req.method === 'POST' && path === '/v1/audio/transcriptions') return transcriptions(req, res, entry);
    if (req.method === 'GET' && path === '/v1/models') return modelsRoute(res, entry);
    if (req.method === 'POST' && path === '/v1/audio/translations') return translations(req, res, entry);
    await drain(req);
    send(
      res,
      entry,
      404,
      JSON_TYPE,
      errorJson(`Invalid URL (${req.method ?? ''} ${path})`, 'invalid_request_error', null, null),
    );
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://fake.invalid').pathname;
    const inFlight = requests.filter((r) => r.path === path && r.outcome === 'pending').length;
    const entry: RequestLogEntry = {
      index: requests.length,
      time: Date.now(),
      receivedAt: null,
      answeredAt: null,
      remoteAddress: req.socket.remoteAddress ?? null,
      method: req.method ?? 'GET',
      path,
      model: null,
      language: null,
      prompt: null,
      responseFormat: null,
      granularities: [],
      filename: null,
      bytes: null,
      sha1: null,
      durationS: null,
      inFlight,
      attempt: 0,
      fault: null,
      status: null,
      outcome: 'pending',
      text: null,
    };
    requests.push(entry);
    res.setHeader('x-request-id', `req_fake_${entry.index}`);
    res.on('close', () => {
      if (entry.outcome === 'pending') entry.outcome = 'client_closed';
    });
    route(req, res, entry).catch((err: unknown) => {
      // A bug in the fake must not look like a scripted fault: answer 500 with its message.
      send(res, entry, 500, JSON_TYPE, errorJson(`fake server bug: ${String(err)}`, 'server_error', null, null));
    });
  }

  const host = options.host ?? '127.0.0.1';
  const server = http.createServer(handle);
  server.listen(options.port ?? 0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}/v1`,
    port,
    requests,
    script(faults, target = 'transcriptions') {
      scripts[target] = Array.isArray(faults) ? [...faults] : faults;
      counts[target] = 0;
    },
    setRandom,
    setLatency(ms, jitterMs = 0) {
      latency = { ms, jitterMs };
    },
    setKey(k) {
      key = k;
    },
    reset,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const [t, resolveDelay] of timers) {
          clearTimeout(t);
          resolveDelay();
        }
        timers.clear();
        server.close(() => resolve());
        // Stalled requests never end by themselves.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
