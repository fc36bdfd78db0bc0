import { openAsBlob } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, upload, type TestServer } from '../helper.ts';
import { rawRequest } from '../support/raw-http.ts';
import { expectError, expectNothingLeft, multipart, postMultipart } from './hostile-kit.ts';

const speech = speechFixture();

describe('Idempotency-Key on POST /v1/jobs', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  /** Jobs accepted so far: they stay (their transcription stalls), everything else must be gone. */
  const kept: string[] = [];

  beforeAll(async () => {
    fake = await startFakeOpenAI({ faults: () => 'stall' });
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      SHUTDOWN_TIMEOUT_MS: '100',
    });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
  });

  const key = (name: string) => ({ 'idempotency-key': name });

  it('answers the first job to the same request again, whatever the order of its fields', async () => {
    const first = await upload(server.url, speech.mp3, { language: 'en', model: 'whisper-1' }, key('same'));
    expect(first.status).toBe(202);
    kept.push(first.body.id);
    const again = await upload(server.url, speech.mp3, { model: 'whisper-1', language: 'en' }, key('same'));
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    await expectNothingLeft(server, kept);
  });

  it('refuses the key reused for another file, other fields or another file name with 422 IDEMPOTENCY_KEY_REUSED, keeping nothing of it', async () => {
    const first = await upload(server.url, speech.mp3, { language: 'en' }, key('reused'));
    expect(first.status).toBe(202);
    kept.push(first.body.id);

    const otherFile = await upload(server.url, speech.wav, { language: 'en' }, key('reused'));
    expectError(otherFile, 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(otherFile.headers.get('idempotent-replayed')).toBeNull();
    const otherFields = await upload(server.url, speech.mp3, { language: 'fr' }, key('reused'));
    expectError(otherFields, 422, 'IDEMPOTENCY_KEY_REUSED');
    const fewerFields = await upload(server.url, speech.mp3, {}, key('reused'));
    expectError(fewerFields, 422, 'IDEMPOTENCY_KEY_REUSED');
    const otherName = await upload(server.url, await openAsBlob(speech.mp3), { language: 'en' }, key('reused'));
    expectError(otherName, 422, 'IDEMPOTENCY_KEY_REUSED');
    await expectNothingLeft(server, kept);

    // The key still stands for its first request.
    const again = await upload(server.url, speech.mp3, { language: 'en' }, key('reused'));
    expect(again.body.id).toBe(first.body.id);
  });

  it('gives one of two different requests racing with a new key the job and the other 422', async () => {
    const a = multipart([
      { name: 'file', filename: 'speech.mp3', contentType: 'audio/mpeg', data: await readAll(speech.mp3) },
    ]);
    const b = multipart([
      { name: 'file', filename: 'speech.wav', contentType: 'audio/wav', data: await readAll(speech.wav) },
    ]);
    const answers = await Promise.all([postMultipart(server, a, key('race')), postMultipart(server, b, key('race'))]);
    expect(answers.map((r) => r.status).sort()).toEqual([202, 422]);
    const winner = answers.find((r) => r.status === 202)!;
    const loser = answers.find((r) => r.status === 422)!;
    expectError(loser, 422, 'IDEMPOTENCY_KEY_REUSED');
    kept.push(winner.body.id);
    await expectNothingLeft(server, kept);
  });

  it('takes a key of 255 characters (and replays it) and refuses 256 with 400 INVALID_FIELD, keeping nothing', async () => {
    const longest = 'k'.repeat(254) + '1';
    const first = await upload(server.url, speech.mp3, {}, key(longest));
    expect(first.status).toBe(202);
    kept.push(first.body.id);
    // All 255 characters are the key: one that differs only in the last is another key.
    const again = await upload(server.url, speech.mp3, {}, key(longest));
    expect(again.body.id).toBe(first.body.id);
    const other = await upload(server.url, speech.mp3, {}, key('k'.repeat(254) + '2'));
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
    kept.push(other.body.id);

    const tooLong = await upload(server.url, speech.mp3, {}, key('k'.repeat(256)));
    expectError(tooLong, 400, 'INVALID_FIELD', { field: 'Idempotency-Key' });
    await expectNothingLeft(server, kept);
  });

  it('refuses an empty key and one with a control character with 400 INVALID_FIELD, keeping nothing', async () => {
    const empty = await upload(server.url, speech.mp3, {}, key(''));
    expectError(empty, 400, 'INVALID_FIELD', { field: 'Idempotency-Key' });
    // Only blanks: HTTP drops a value's surrounding whitespace, so this is an empty key too.
    const blank = await upload(server.url, speech.mp3, {}, key(' \t '));
    expectError(blank, 400, 'INVALID_FIELD', { field: 'Idempotency-Key' });
    // A tab is the one control character HTTP lets through inside a value; the key refuses it as the others.
    const tab = await upload(server.url, speech.mp3, {}, key('a\tb'));
    expectError(tab, 400, 'INVALID_FIELD', { field: 'Idempotency-Key' });
    // Any other one never gets past Node's HTTP parser, which answers for the whole request.
    const form = multipart([{ name: 'file', filename: 'a.mp3', contentType: 'audio/mpeg', data: 'not audio' }]);
    const ctl = await rawRequest(server.url, {
      method: 'POST',
      target: '/v1/jobs',
      headers: { 'content-type': form.contentType, 'idempotency-key': 'a\u0001b' },
      body: form.body.toString('latin1'),
    });
    expectError({ status: ctl.status, body: JSON.parse(ctl.body) }, 400, 'INVALID_FIELD', { field: 'request' });
    await expectNothingLeft(server, kept);
  });

  it('bounds the key the same way on the OpenAI-compatible route, in its error shape', async () => {
    const post = async (idempotencyKey: string) => {
      const form = new FormData();
      form.append('file', await openAsBlob(speech.mp3), 'speech.mp3');
      form.append('model', 'whisper-1');
      const abort = new AbortController();
      const res = await fetch(`${server.url}/v1/audio/transcriptions`, {
        method: 'POST',
        body: form,
        headers: key(idempotencyKey),
        signal: abort.signal,
      });
      // An accepted request answers when its job ends (never, here): its headers name the job at once.
      if (res.status === 200) {
        abort.abort();
        return { status: res.status, job: res.headers.get('x-job-id'), body: null };
      }
      return { status: res.status, job: null, body: (await res.json()) as unknown };
    };
    const refusal = {
      error: { type: 'invalid_request_error', param: 'Idempotency-Key', code: 'invalid_field' },
    };
    for (const bad of ['k'.repeat(256), '', 'a\tb']) {
      const res = await post(bad);
      expect({ status: res.status, body: res.body }, JSON.stringify(bad)).toMatchObject({ status: 400, body: refusal });
    }
    await expectNothingLeft(server, kept);

    const longest = await post('o'.repeat(255));
    expect(longest.status).toBe(200);
    expect(longest.job).toMatch(/^job_/);
    kept.push(longest.job!);
    await expectNothingLeft(server, kept);
  });
});

async function readAll(file: string): Promise<Buffer> {
  return Buffer.from(await (await openAsBlob(file)).arrayBuffer());
}
