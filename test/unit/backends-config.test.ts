import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig } from '../../src/config.ts';
import { createBackendRegistry } from '../../src/transcribe/backends.ts';
import type { TranscriptionMetrics } from '../../src/transcribe/instrument.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'backends-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** The ConfigError's issues for this env (fails the test when the config loads). */
function issues(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const TWO_BACKENDS = `
default_model: whisper-1
backends:
  - name: openai
    engine: openai
    api_key_env: MY_OPENAI_KEY
    rate_limit: { rpm: 500 }
    models:
      - id: whisper-1
  - name: speaches
    engine: openai
    base_url: http://127.0.0.1:8000/v1
    max_in_flight: 2
    circuit: { failure_threshold: 2 }
    models:
      - id: Systran/faster-whisper-large-v3
        segments: true
        words: true
        max_bytes: 104857600
        price_per_minute: 0
        languages: [en, de]
`;

describe('BACKENDS_FILE', () => {
  it('declares several backends, each with its own limits, the env settings as defaults', () => {
    const config = loadConfig({
      BACKENDS_FILE: file('two.yaml', TWO_BACKENDS),
      MY_OPENAI_KEY: 'sk-secret-123',
      RATE_LIMIT_BURST: '7',
      MAX_IN_FLIGHT: '5',
      CIRCUIT_COOL_DOWN_MS: '1234',
    });
    expect(config.model).toBe('whisper-1');
    expect(config.provider).toBe('openai');
    const [openai, speaches] = config.backends;
    expect(openai).toMatchObject({
      name: 'openai',
      apiKey: 'sk-secret-123',
      baseURL: undefined,
      rateLimit: { rpm: 500, burst: 7 },
      maxInFlight: 5,
      circuit: { failureThreshold: 5, coolDownMs: 1234 },
    });
    // whisper-1's facts come from the built-in table.
    expect(openai?.models[0]).toMatchObject({ id: 'whisper-1', segmentTimes: true, pricePerMinuteUsd: 0.006 });
    expect(speaches).toMatchObject({
      name: 'speaches',
      apiKey: undefined,
      baseURL: 'http://127.0.0.1:8000/v1',
      maxInFlight: 2,
      circuit: { failureThreshold: 2, coolDownMs: 1234 },
    });
    expect(speaches?.models[0]).toEqual({
      id: 'Systran/faster-whisper-large-v3',
      maxBytes: 104857600,
      maxSeconds: Infinity,
      segmentTimes: true,
      wordTimes: true,
      pricePerMinuteUsd: 0,
      languages: ['en', 'de'],
      known: true,
      translation: false,
    });
  });

  it('reads the same declaration from BACKENDS_JSON, and a .json file as JSON', () => {
    const json = JSON.stringify({
      backends: [{ name: 'local', engine: 'local', models: [{ id: 'pocketsphinx-en-us' }] }],
    });
    expect(loadConfig({ BACKENDS_JSON: json }).backends.map((b) => b.name)).toEqual(['local']);
    expect(loadConfig({ BACKENDS_FILE: file('one.json', json) }).model).toBe('pocketsphinx-en-us');
  });

  it('names the file and the path in it of every mistake', () => {
    const bad = file(
      'bad.yaml',
      `
backends:
  - name: a
    engine: whisperx
    models: [{ id: m }]
  - name: b c
    engine: openai
    base_url: ftp://127.0.0.1/v1
    models: []
`,
    );
    const label = `BACKENDS_FILE (${bad})`;
    expect(issues({ BACKENDS_FILE: bad })).toEqual([
      `${label}: backends[0].engine: Invalid option: expected one of "openai"|"local"`,
      `${label}: backends[1].name: must be 1 to 64 letters, digits, "_", "." or "-"`,
      `${label}: backends[1].base_url: Invalid URL`,
      `${label}: backends[1].models: Too small: expected array to have >=1 items`,
    ]);
  });

  it('refuses an unreadable file, bad YAML, an unknown engine or field', () => {
    expect(issues({ BACKENDS_FILE: path.join(dir, 'missing.yaml') })).toEqual([
      `BACKENDS_FILE: cannot read ${path.join(dir, 'missing.yaml')}: ENOENT`,
    ]);
    const yaml = file('broken.yaml', 'backends: [ { name: a\n');
    expect(issues({ BACKENDS_FILE: yaml })[0]).toMatch(/^BACKENDS_FILE \(.*broken\.yaml\): not valid YAML: /);
    expect(issues({ BACKENDS_JSON: '{"backends": [' })[0]).toMatch(/^BACKENDS_JSON: not valid JSON: /);
    expect(
      issues({
        BACKENDS_JSON: JSON.stringify({ backends: [{ name: 'x', engine: 'whisperx', models: [{ id: 'm' }] }] }),
      }),
    ).toEqual(['BACKENDS_JSON: backends[0].engine: Invalid option: expected one of "openai"|"local"']);
    expect(
      issues({
        BACKENDS_JSON: JSON.stringify({
          backends: [{ name: 'x', engine: 'local', models: [{ id: 'pocketsphinx-en-us', colour: 'red' }] }],
        }),
      }),
    ).toEqual(['BACKENDS_JSON: backends[0].models[0]: Unrecognized key: "colour"']);
  });

  it('refuses a model declared by two backends, a duplicate name, a missing key variable and a missing price', () => {
    const json = JSON.stringify({
      backends: [
        { name: 'openai', engine: 'openai', api_key_env: 'NOT_SET_KEY', models: [{ id: 'whisper-1' }] },
        {
          name: 'openai',
          engine: 'openai',
          base_url: 'http://127.0.0.1:8000/v1',
          models: [{ id: 'whisper-1' }, { id: 'own-model', segments: true }],
        },
      ],
    });
    expect(issues({ BACKENDS_JSON: json })).toEqual([
      'BACKENDS_JSON: backends[0].api_key_env: the environment variable NOT_SET_KEY is not set',
      'BACKENDS_JSON: backends[1].models[1].price_per_minute: required for a model the openai table does not know (0 for self-hosted)',
      'backends: the name "openai" is declared twice',
      'backends: model "whisper-1" is declared by both "openai" and "openai"; a model has one backend',
    ]);
  });

  it('refuses api.openai.com without a key, words without segments, and settings the declaration replaces', () => {
    const json = JSON.stringify({
      backends: [
        { name: 'cloud', engine: 'openai', models: [{ id: 'whisper-1' }] },
        {
          name: 'own',
          engine: 'openai',
          base_url: 'http://127.0.0.1:8000/v1',
          models: [{ id: 'own-model', words: true, price_per_minute: 0 }],
        },
      ],
    });
    expect(
      issues({ BACKENDS_JSON: json, TRANSCRIBE_PROVIDER: 'openai', OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' }),
    ).toEqual([
      'TRANSCRIBE_PROVIDER: not used with BACKENDS_FILE/BACKENDS_JSON; declare the backend there instead',
      'OPENAI_BASE_URL: not used with BACKENDS_FILE/BACKENDS_JSON; declare the backend there instead',
      'BACKENDS_JSON: backends[0].api_key_env: required for api.openai.com (name the environment variable holding the key)',
      'BACKENDS_JSON: backends[1].models[0].words: word times come with verbose_json; set segments: true',
    ]);
  });

  it('refuses a default model no backend serves', () => {
    const json = JSON.stringify({
      default_model: 'whisper-9',
      backends: [{ name: 'local', engine: 'local', models: [{ id: 'pocketsphinx-en-us' }] }],
    });
    expect(issues({ BACKENDS_JSON: json })).toEqual([
      'backends: default_model "whisper-9" is served by no declared backend',
    ]);
    const ok = JSON.stringify({
      backends: [{ name: 'local', engine: 'local', models: [{ id: 'pocketsphinx-en-us' }] }],
    });
    expect(issues({ BACKENDS_JSON: ok, TRANSCRIBE_MODEL: 'whisper-1' })).toEqual([
      'TRANSCRIBE_MODEL: "whisper-1" is served by no declared backend; known: pocketsphinx-en-us',
    ]);
  });

  it('takes the examples of docs/configuration.md and the README as written', () => {
    const doc = readFileSync(path.resolve(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
    const yaml = /## Backends[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(yaml).toBeDefined();
    const config = loadConfig({
      BACKENDS_FILE: file('doc.yaml', yaml ?? ''),
      OPENAI_API_KEY: 'sk-doc',
      WHISPER_CPP_KEY: 'cpp-doc',
    });
    expect(config.backends.map((b) => [b.name, b.models.map((m) => m.id)])).toEqual([
      ['openai', ['whisper-1', 'gpt-4o-transcribe']],
      ['speaches', ['Systran/faster-whisper-large-v3']],
      ['whisper-cpp', ['ggml-base.en']],
    ]);
    const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const short = /### Several backends[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    const fromReadme = loadConfig({ BACKENDS_FILE: file('readme.yaml', short ?? ''), OPENAI_API_KEY: 'sk-doc' });
    expect(fromReadme.backends.map((b) => b.name)).toEqual(['openai', 'speaches']);
  });

  it('prints each key only as the variable it came from', () => {
    const config = loadConfig({ BACKENDS_FILE: file('print.yaml', TWO_BACKENDS), MY_OPENAI_KEY: 'sk-secret-123' });
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).not.toContain('sk-secret-123');
    const backends = redactConfig(config).backends as Array<{ name: string; apiKey: string; baseURL: string }>;
    expect(backends.map((b) => [b.name, b.apiKey, b.baseURL])).toEqual([
      ['openai', '(set from MY_OPENAI_KEY)', '(sdk default)'],
      ['speaches', '(unset)', 'http://127.0.0.1:8000/v1'],
    ]);
  });

  it("without a declaration: the one backend today's env describes, under the engine's name", () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-test', TRANSCRIBE_MODEL: 'my-finetune' });
    expect(config.backends).toHaveLength(1);
    expect(config.backends[0]).toMatchObject({ name: 'openai', engine: 'openai', apiKey: 'sk-test' });
    // The configured model is served too, as the engine's stand-in (priced high, so estimates never undershoot).
    expect(config.backends[0]?.models.map((m) => [m.id, m.known])).toEqual([
      ['whisper-1', true],
      ['gpt-4o-transcribe', true],
      ['gpt-4o-mini-transcribe', true],
      ['my-finetune', false],
    ]);
    expect(loadConfig({}).backends.map((b) => b.name)).toEqual(['local']);
  });
});

describe('the backend registry', () => {
  const metrics: TranscriptionMetrics = {
    chunk: () => undefined,
    providerRequest: () => undefined,
    retry: () => undefined,
    limiterWait: () => undefined,
  };

  it('sends each model to its backend and refuses another with 400 INVALID_FIELD listing the known ones', async () => {
    const config = loadConfig({ BACKENDS_FILE: file('reg.yaml', TWO_BACKENDS), MY_OPENAI_KEY: 'sk-x' });
    const registry = await createBackendRegistry(config, { metrics, logger: pino({ level: 'silent' }) });
    try {
      expect(registry.modelIds()).toEqual(['whisper-1', 'Systran/faster-whisper-large-v3']);
      expect(registry.backendOf('Systran/faster-whisper-large-v3').spec.name).toBe('speaches');
      expect(registry.backendOf('whisper-1').spec.name).toBe('openai');
      // Each backend has a breaker of its own.
      expect(registry.backends[0]?.breaker).not.toBe(registry.backends[1]?.breaker);
      expect(() => registry.backendOf('whisper-2')).toThrow(
        expect.objectContaining({
          code: 'INVALID_FIELD',
          statusCode: 400,
          details: { field: 'model', models: ['whisper-1', 'Systran/faster-whisper-large-v3'] },
        }),
      );
    } finally {
      await Promise.all(registry.backends.map((b) => b.limiter.stop()));
    }
  });
});
