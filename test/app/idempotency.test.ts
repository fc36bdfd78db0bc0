import { openAsBlob } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, upload, type TestServer } from '../helper.ts';
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
});

async function readAll(file: string): Promise<Buffer> {
  return Buffer.from(await (await openAsBlob(file)).arrayBuffer());
}
