import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture, writeGenerated } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, startServer, upload, type ErrorJson, type TestServer } from '../helper.ts';

describe('bad requests to the service', () => {
  let server: TestServer;
  const speech = speechFixture();

  beforeAll(async () => {
    server = await startServer({
      TRANSCRIBE_PROVIDER: 'local',
      MAX_UPLOAD_BYTES: String(2 * 1024 * 1024),
      MAX_DURATION_S: '60',
    });
  });
  afterAll(async () => {
    await server.close();
    await removeDir(server.dataDir);
  });

  async function expectClean(): Promise<void> {
    expect(await jobFiles(server.dataDir)).toEqual([]);
    const ready = await fetch(`${server.url}/health/ready`);
    expect(ready.status).toBe(200);
    const list = await getJson<{ items: unknown[] }>(`${server.url}/v1/jobs`);
    expect(list.body.items).toEqual([]);
  }

  const cases: Array<{
    name: string;
    send: () => Promise<{ status: number; body: ErrorJson }>;
    status: number;
    code: string;
  }> = [
    {
      name: 'a text file renamed .mp3',
      send: () => upload(server.url, writeGenerated('notes.mp3', 'hello, this is not audio\n'.repeat(50))),
      status: 415,
      code: 'UNSUPPORTED_MEDIA',
    },
    { name: 'an empty file', send: () => upload(server.url, new Blob([])), status: 415, code: 'UNSUPPORTED_MEDIA' },
    {
      name: 'a form without a file part',
      send: () => upload(server.url, null, { language: 'en' }),
      status: 400,
      code: 'FILE_MISSING',
    },
    {
      name: 'a JSON body',
      send: async () => {
        const res = await fetch(`${server.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"file":"x"}',
        });
        return { status: res.status, body: (await res.json()) as ErrorJson };
      },
      status: 400,
      code: 'FILE_MISSING',
    },
    {
      name: 'a file over MAX_UPLOAD_BYTES',
      send: () => upload(server.url, new Blob([Buffer.alloc(3 * 1024 * 1024, 7)])),
      status: 413,
      code: 'FILE_TOO_LARGE',
    },
    {
      name: 'an invalid language',
      send: () => upload(server.url, speech.wav, { language: 'english' }),
      status: 400,
      code: 'INVALID_FIELD',
    },
    {
      name: 'metadata that is not a JSON object',
      send: () => upload(server.url, speech.wav, { metadata: '[1,2' }),
      status: 400,
      code: 'INVALID_FIELD',
    },
  ];

  for (const c of cases) {
    it(`answers ${c.status} ${c.code} to ${c.name} and leaves nothing behind`, async () => {
      const res = await c.send();
      expect(res.status).toBe(c.status);
      expect(res.body.error.code).toBe(c.code);
      expect(typeof res.body.error.message).toBe('string');
      await expectClean();
    });
  }

  it('answers 404 NOT_FOUND for unknown routes and unknown or malformed job ids', async () => {
    for (const path of [
      '/nope',
      '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA',
      '/v1/jobs/../../etc/passwd',
      '/v1/jobs/job_x/transcript',
    ]) {
      const res = await getJson<ErrorJson>(`${server.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    const del = await fetch(`${server.url}/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAA`, { method: 'DELETE' });
    expect(del.status).toBe(404);
  });

  it('answers 400 INVALID_FIELD for a bad list query', async () => {
    const res = await getJson<ErrorJson>(`${server.url}/v1/jobs?limit=0`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'INVALID_FIELD', details: { field: 'limit' } });
  });
});
