import { readFile } from 'node:fs/promises';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, startServer, type TestServer } from '../helper.ts';

const KEY = 'facade-refusals-key-0123456789';
const MAX_UPLOAD_BYTES = 200_000;

/** What the openai client threw, as the fields a caller reads. */
async function refusal(call: Promise<unknown>) {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  const e = err as InstanceType<typeof OpenAI.APIError>;
  return { status: e.status, type: e.type, code: e.code, param: e.param, body: e.error };
}

describe('OpenAI audio API refusals, in OpenAI error shape, leaving nothing behind', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let client: OpenAI;
  const speech = speechFixture();
  let small: Awaited<ReturnType<typeof toFile>>;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    server = await startServer({
      API_KEYS: KEY,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
    });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    // A first few KB of real audio: under the cap, enough for the fields to be judged.
    small = await toFile((await readFile(speech.wav)).subarray(0, 50_000), 'small.wav');
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    if (server) await removeDir(server.dataDir);
  });

  it('401 invalid_api_key with a wrong key, and without one', async () => {
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
    expect(await refusal(wrong.audio.transcriptions.create({ file: small, model: 'whisper-1' }))).toMatchObject({
      status: 401,
      type: 'invalid_request_error',
      code: 'invalid_api_key',
      param: null,
    });
    expect(await refusal(wrong.models.list())).toMatchObject({ status: 401, code: 'invalid_api_key' });
    const none = await fetch(`${server.url}/v1/models`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({
      error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
  });

  it('400 for a bad field, naming it as param', async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ model: 'no-such-model' }, 'model', 'invalid_field'],
      [{ model: 'whisper-1', response_format: 'docx' }, 'response_format', 'invalid_field'],
      [{ model: 'whisper-1', temperature: 1.5 }, 'temperature', 'invalid_field'],
      [{ model: 'whisper-1', language: 'english' }, 'language', 'invalid_field'],
      [{ model: 'whisper-1', timestamp_granularities: ['word'] }, 'timestamp_granularities[]', 'invalid_field'],
      [
        { model: 'gpt-4o-transcribe', response_format: 'verbose_json', timestamp_granularities: ['word'] },
        'timestamp_granularities[]',
        'invalid_field',
      ],
    ];
    for (const [fields, param, code] of cases) {
      const params = { file: small, ...fields } as unknown as OpenAI.Audio.TranscriptionCreateParamsNonStreaming;
      const got = await refusal(client.audio.transcriptions.create(params));
      expect(got, JSON.stringify(fields)).toMatchObject({ status: 400, type: 'invalid_request_error', param, code });
    }
  });

  it('400 without a file, 415 for a file that is not audio, 413 for a file over the cap', async () => {
    const form = new FormData();
    form.append('model', 'whisper-1');
    const noFile = await fetch(`${server.url}/v1/audio/transcriptions`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(noFile.status).toBe(400);
    expect(await noFile.json()).toMatchObject({ error: { code: 'file_missing', type: 'invalid_request_error' } });

    const text = await toFile(Buffer.from('this is not audio at all\n'.repeat(100)), 'notes.mp3');
    expect(await refusal(client.audio.transcriptions.create({ file: text, model: 'whisper-1' }))).toMatchObject({
      status: 415,
      code: 'unsupported_media',
    });
    const large = await toFile(await readFile(speech.wav), 'speech.wav');
    expect(large.size).toBeGreaterThan(MAX_UPLOAD_BYTES);
    expect(await refusal(client.audio.transcriptions.create({ file: large, model: 'whisper-1' }))).toMatchObject({
      status: 413,
      code: 'file_too_large',
    });
  });

  it('after every refusal: no job, no file, and the server still serves', async () => {
    const jobs = await getJson<{ items: unknown[] }>(`${server.url}/v1/jobs`, { authorization: `Bearer ${KEY}` });
    expect(jobs.body.items).toEqual([]);
    expect(await jobFiles(server.dataDir)).toEqual([]);
    expect((await client.models.retrieve('whisper-1')).id).toBe('whisper-1');
    // The service's own routes keep their own error shape.
    const own = await fetch(`${server.url}/v1/jobs`);
    expect(await own.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });
});
