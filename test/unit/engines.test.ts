import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { copyFormatFor } from '../../src/chunker/chunk-format.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { resolveModel } from '../../src/transcribe/models.ts';
import { ENGINES, PROVIDER_NAMES, createProvider } from '../../src/transcribe/providers/index.ts';

const logger = pino({ level: 'silent' });
const stream = (demuxer: string, codec: string, sample_rate = 16_000, channels = 1) => ({
  demuxer,
  codec,
  sample_rate,
  channels,
});

describe('the engine registry', () => {
  it('is the one list of provider names, which the config accepts and nothing else', () => {
    expect(PROVIDER_NAMES).toEqual(Object.keys(ENGINES));
    for (const name of PROVIDER_NAMES) {
      expect(loadConfig({ TRANSCRIBE_PROVIDER: name, OPENAI_API_KEY: 'sk-test' }).provider).toBe(name);
    }
    expect(() => loadConfig({ TRANSCRIBE_PROVIDER: 'whisperx' })).toThrow(ConfigError);
  });

  it.each(PROVIDER_NAMES)('%s: its default model is one it knows, and the config defaults to it', (name) => {
    const engine = ENGINES[name];
    expect(engine.models.map((m) => m.id)).toContain(engine.defaultModel);
    expect(loadConfig({ TRANSCRIBE_PROVIDER: name, OPENAI_API_KEY: 'sk-test' }).model).toBe(engine.defaultModel);
    expect(new Set(engine.models.map((m) => m.id)).size).toBe(engine.models.length);
  });

  it.each(PROVIDER_NAMES)('%s: a model it does not know gets a stand-in marked unknown', (name) => {
    expect(resolveModel(name, 'no-such-model')).toMatchObject({ id: 'no-such-model', known: false });
    expect(resolveModel(name, ENGINES[name].defaultModel).known).toBe(true);
  });

  it('builds the provider the config names', () => {
    expect(createProvider(loadConfig({ TRANSCRIBE_PROVIDER: 'local' }), logger).name).toBe('local');
    expect(
      createProvider(loadConfig({ TRANSCRIBE_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test' }), logger).models,
    ).toEqual(ENGINES.openai.models.map((m) => m.id));
  });
});

describe('what each engine reads', () => {
  it('openai takes mp3, PCM WAV, flac and ogg as they are, and gets mp3 otherwise', () => {
    const { chunks } = ENGINES.openai;
    expect(copyFormatFor(chunks, stream('mp3', 'mp3', 44_100, 2))).toBe('mp3');
    expect(copyFormatFor(chunks, stream('wav', 'pcm_s16le', 44_100, 2))).toBe('wav');
    expect(copyFormatFor(chunks, stream('flac', 'flac'))).toBe('flac');
    expect(copyFormatFor(chunks, stream('ogg', 'opus'))).toBe('ogg');
    expect(copyFormatFor(chunks, stream('ogg', 'vorbis'))).toBe('ogg');
    expect(copyFormatFor(chunks, stream('mov,mp4,m4a,3gp,3g2,mj2', 'aac'))).toBeNull();
    expect(copyFormatFor(chunks, stream('wav', 'pcm_f32le'))).toBeNull();
    expect(chunks.encodeFormat).toBe('mp3');
  });

  it('local takes only 16 kHz mono PCM WAV as it is, and gets WAV otherwise', () => {
    const { chunks } = ENGINES.local;
    expect(copyFormatFor(chunks, stream('wav', 'pcm_s16le'))).toBe('wav');
    expect(copyFormatFor(chunks, stream('wav', 'pcm_s16le', 44_100, 1))).toBeNull();
    expect(copyFormatFor(chunks, stream('wav', 'pcm_s16le', 16_000, 2))).toBeNull();
    expect(copyFormatFor(chunks, stream('mp3', 'mp3'))).toBeNull();
    expect(chunks.encodeFormat).toBe('wav');
  });
});
