import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { MediaProbe } from '../../src/chunker/types.ts';
import { AppError } from '../../src/errors.ts';
import type { JobRequest } from '../../src/jobs/types.ts';
import { createSystemMonitor } from '../../src/resources/system-monitor.ts';
import {
  createCostEstimator,
  createRequestValidator,
  createValidationGate,
  type CostEstimator,
  type MediaValidator,
  type SystemCheckInput,
  type SystemValidator,
} from '../../src/validate/index.ts';

const logger = pino({ level: 'silent' });

const probe: MediaProbe = {
  formatName: 'wav',
  demuxer: 'wav',
  formatLongName: 'WAV / WAVE (Waveform Audio)',
  durationS: 1200,
  sizeBytes: 38_400_000,
  bitRate: 256_000,
  streamCount: 1,
  audioStreamCount: 1,
  videoStreamCount: 0,
  audio: { index: 0, codec: 'pcm_s16le', sampleRate: 16_000, channels: 1, bitRate: 256_000 },
};

const request: JobRequest = {
  language: null,
  prompt: null,
  model: 'whisper-1',
  metadata: null,
  callback_url: null,
  max_cost_usd: null,
};

interface Script {
  systemFailsAt?: 'upload' | 'chunks';
  mediaError?: AppError;
  providerError?: AppError;
  /** The provider's answer waits for this (to show what runs while it is out). */
  providerAnswer?: Promise<void>;
}

function build(script: Script = {}) {
  const order: string[] = [];
  const systemInputs: SystemCheckInput[] = [];
  const system: SystemValidator = {
    async check(checked) {
      systemInputs.push(checked);
      const { durationS } = checked;
      order.push(durationS === null ? 'system' : `storage:${durationS}`);
      if (
        (script.systemFailsAt === 'upload' && durationS === null) ||
        (script.systemFailsAt === 'chunks' && durationS !== null)
      ) {
        throw new AppError('SERVER_BUSY', 'busy', { retryAfterS: 60 });
      }
      const snapshot = await createSystemMonitor({
        dataDir: '/x',
        readings: {
          disk: async () => ({ freeBytes: 1e12, totalBytes: 2e12 }),
          memory: () => ({ rssBytes: 1, heapUsedBytes: 1, heapLimitBytes: 100, systemFreeBytes: 1e10 }),
        },
      }).sample();
      return { snapshot, requiredBytes: 1, ms: 0 };
    },
  };
  const mediaInputs: Array<Parameters<MediaValidator['validate']>[0]> = [];
  const media: MediaValidator = {
    async validate(input) {
      const { filename } = input;
      mediaInputs.push(input);
      order.push('media');
      if (script.mediaError) throw script.mediaError;
      return {
        audio: {
          filename,
          size_bytes: probe.sizeBytes,
          duration_s: 1200,
          format: 'wav',
          codec: 'pcm_s16le',
          sample_rate: 16_000,
          channels: 1,
          demuxer: 'wav',
        },
        probe,
        bitrate: 256_000,
        planned: { chunks: 2, overlapS: 6 },
        decodedS: 1200,
        durationSource: 'measured',
        ms: 0,
      };
    },
  };
  const provider = {
    async check() {
      order.push('provider');
      await script.providerAnswer;
      order.push('provider answered');
      if (script.providerError) throw script.providerError;
      return { status: { status: 'ok' as const, detail: 'ok', checkedAt: 0 }, cached: true, ms: 0 };
    },
  };
  const real = createCostEstimator({ logger, provider: 'openai' });
  const estimator: CostEstimator = {
    estimate: (input) => {
      order.push('estimate');
      return real.estimate(input);
    },
    checkBudget: (estimate, max) => {
      order.push('budget');
      return real.checkBudget(estimate, max);
    },
  };
  const fields = createRequestValidator({ defaultModel: 'whisper-1', knownModels: ['whisper-1'] });
  return {
    gate: createValidationGate({ logger, system, media, provider, estimator, fields }),
    order,
    systemInputs,
    mediaInputs,
  };
}

const input = { file: '/tmp/upload', filename: 'talk.wav', sizeBytes: 38_400_000, request };

async function failure(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

describe('validation gate', () => {
  it('runs system, media, storage with the real duration, provider and budget in order', async () => {
    const { gate, order, systemInputs, mediaInputs } = build();
    const result = await gate.validate(input);
    // The provider check is started first and runs beside the others; its outcome is taken in its place.
    expect(order).toEqual(['provider', 'system', 'provider answered', 'media', 'storage:1200', 'estimate', 'budget']);
    expect(result.checks.map((c) => [c.name, c.ok])).toEqual([
      ['system', true],
      ['media', true],
      ['storage', true],
      ['provider', true],
      ['budget', true],
    ]);
    expect(result.checks.every((c) => c.ms >= 0 && c.code === undefined)).toBe(true);
    // The gate runs on the stored upload: free space is asked only for what is still to be written.
    expect(systemInputs).toEqual([
      { sizeBytes: 38_400_000, durationS: null, uploadStored: true },
      { sizeBytes: 38_400_000, durationS: 1200, uploadStored: true },
    ]);
    // 1200 s and the 6 s the second chunk repeats, at $0.006 a minute.
    expect(result.estimate).toEqual({ cost_usd: 0.1206, provider: 'openai', model: 'whisper-1' });
    expect(result.plannedChunks).toBe(2);
    // The media check counts the chunks of the job's model, as its chunk source will cut them.
    expect(mediaInputs[0]).toMatchObject({ model: 'whisper-1', sequential: false });
    expect(result.audio.filename).toBe('talk.wav');
    expect(result.probe).toBe(probe);
  });

  it("hands the media check the upload's frame walk as it streamed in", async () => {
    const { gate, mediaInputs } = build();
    const walked = { result: () => null };
    await gate.validate({ ...input, walked });
    expect(mediaInputs[0]).toMatchObject({ file: input.file, filename: input.filename, walked });
  });

  it('stops at a busy system before probing the file', async () => {
    const { gate, order } = build({ systemFailsAt: 'upload' });
    const err = await failure(gate.validate(input));
    expect(err.code).toBe('SERVER_BUSY');
    expect(err.retryAfterS).toBe(60);
    expect(order.filter((o) => !o.startsWith('provider'))).toEqual(['system']);
  });

  it('stops at bad media with its own code', async () => {
    const { gate, order } = build({ mediaError: new AppError('UNSUPPORTED_MEDIA', 'no audio') });
    expect((await failure(gate.validate(input))).code).toBe('UNSUPPORTED_MEDIA');
    expect(order.filter((o) => !o.startsWith('provider'))).toEqual(['system', 'media']);
  });

  it('stops when the chunks of the real duration do not fit', async () => {
    const { gate, order } = build({ systemFailsAt: 'chunks' });
    expect((await failure(gate.validate(input))).code).toBe('SERVER_BUSY');
    expect(order.filter((o) => !o.startsWith('provider'))).toEqual(['system', 'media', 'storage:1200']);
  });

  it('stops when the provider is down, before estimating', async () => {
    const { gate, order } = build({ providerError: new AppError('PROVIDER_AUTH', 'bad key') });
    expect((await failure(gate.validate(input))).code).toBe('PROVIDER_AUTH');
    expect(order.filter((o) => !o.startsWith('provider'))).toEqual(['system', 'media', 'storage:1200']);
    expect(order).not.toContain('estimate');
  });

  it('probes the media while the provider check is out, and waits for its answer before accepting', async () => {
    let answer!: () => void;
    const { gate, order } = build({ providerAnswer: new Promise<void>((r) => (answer = r)) });
    let done = false;
    const validated = gate.validate(input).finally(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['provider', 'system', 'media', 'storage:1200']);
    expect(done).toBe(false);
    answer();
    const result = await validated;
    expect(result.checks.map((c) => c.name)).toEqual(['system', 'media', 'storage', 'provider', 'budget']);
  });

  // The same refusal as when the checks ran one after another: the first failing check in the order wins.
  it.each([
    ['system', { systemFailsAt: 'upload' } as const, 'SERVER_BUSY'],
    ['media', { mediaError: new AppError('UNSUPPORTED_MEDIA', 'no audio') }, 'UNSUPPORTED_MEDIA'],
    ['storage', { systemFailsAt: 'chunks' } as const, 'SERVER_BUSY'],
  ])('refuses for %s, not for the provider that is down as well', async (name, script, code) => {
    const { gate } = build({ ...script, providerError: new AppError('PROVIDER_UNAVAILABLE', 'down') });
    const err = await failure(gate.validate(input));
    expect(err.code).toBe(code);
  });

  it('answers BUDGET_EXCEEDED when the estimate is above max_cost_usd', async () => {
    const { gate } = build();
    const err = await failure(gate.validate({ ...input, request: { ...request, max_cost_usd: 0.1 } }));
    expect(err.code).toBe('BUDGET_EXCEEDED');
    expect(err.details).toMatchObject({ estimate_usd: 0.1206, max_cost_usd: 0.1 });
  });

  it('holds the budget to the overlap too: a max_cost_usd the duration alone would fit refuses', async () => {
    const { gate } = build();
    const err = await failure(gate.validate({ ...input, request: { ...request, max_cost_usd: 0.12 } }));
    expect(err.code).toBe('BUDGET_EXCEEDED');
    expect(err.details).toEqual({ estimate_usd: 0.1206, max_cost_usd: 0.12, limit: 'request' });
    const fits = await build().gate.validate({ ...input, request: { ...request, max_cost_usd: 0.1206 } });
    expect(fits.estimate.cost_usd).toBe(0.1206);
  });

  it('validates text fields on their own', () => {
    const { gate, order } = build();
    expect(gate.validateFields({ language: 'en', dry_run: '1' })).toMatchObject({
      request: { language: 'en' },
      dryRun: true,
    });
    expect(() => gate.validateFields({ colour: 'red' })).toThrow(AppError);
    expect(order).toEqual([]);
  });
});
