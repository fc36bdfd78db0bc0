import { createHash } from 'node:crypto';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI } from '../fake-openai/server.ts';
import type { FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';

/*
 * The fake provider reads an upload's multipart form as it streams in (test/fake-openai/form.ts): every field the
 * request log records as FormData gave them, and the bounds of a buffered read (413 past the limit with the whole
 * body counted, 400 for what is not a form, nothing answered for an upload its client gave up).
 */

const fx = speechFixture();
const mp3 = readFileSync(fx.mp3);
const BOUNDARY = '----fake-form-test';

type Part = { name: string; value: string } | { name: string; filename: string; data: Buffer };

/** A multipart/form-data body; `closed` false leaves out the closing delimiter (a form cut short). */
function multipart(parts: readonly Part[], closed = true): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const disposition =
      'filename' in p ? `form-data; name="${p.name}"; filename="${p.filename}"` : `form-data; name="${p.name}"`;
    const type = 'filename' in p ? 'Content-Type: application/octet-stream\r\n' : '';
    out.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`));
    out.push('filename' in p ? p.data : Buffer.from(p.value));
    out.push(Buffer.from('\r\n'));
  }
  if (closed) out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(out);
}

const FORM_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

interface Reply {
  status: number;
  body: string;
}

function send(fake: FakeOpenAI, route: string, body: Buffer, contentType: string | null = FORM_TYPE): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      authorization: `Bearer ${FAKE_OPENAI_KEY}`,
      'content-length': body.length,
    };
    if (contentType !== null) headers['content-type'] = contentType;
    const req = http.request(`${fake.url}/audio/${route}`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const errorOf = (r: Reply) => (JSON.parse(r.body) as { error: { message: string; type: string } }).error;
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const upload = (data: Buffer = mp3): Part[] => [
  { name: 'file', filename: 'chunk-00001.mp3', data },
  { name: 'model', value: 'whisper-1' },
];

describe('the fake provider reads the form as it streams in', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI({ maxBytes: 1000 + mp3.length });
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    fake.reset();
  });

  /** The server still answers a good request normally. */
  async function stillServes(): Promise<void> {
    const before = fake.requests.length;
    expect((await send(fake, 'transcriptions', multipart(upload()))).status).toBe(200);
    expect(fake.requests[before]).toMatchObject({ status: 200, outcome: 'answered', sha1: sha1(mp3) });
  }

  it('logs every field as FormData gave it: the first of a name, no empty text, the filename with its path', async () => {
    const body = multipart([
      { name: 'model', value: 'whisper-1' },
      { name: 'model', value: 'gpt-4o-transcribe' },
      { name: 'language', value: '' },
      { name: 'prompt', value: 'Grüße, “quoted”' },
      { name: 'response_format', value: 'verbose_json' },
      { name: 'timestamp_granularities[]', value: 'word' },
      { name: 'other', filename: 'x.bin', data: Buffer.from('another file part') },
      { name: 'timestamp_granularities[]', value: 'segment' },
      { name: 'file', filename: 'dir/chunk-00007.mp3', data: mp3 },
      { name: 'file', filename: 'second.mp3', data: Buffer.from('a second file part') },
    ]);
    expect((await send(fake, 'transcriptions', body)).status).toBe(200);
    expect((await send(fake, 'transcriptions', body)).status).toBe(200);
    const [first, second] = fake.requests;
    expect(first).toMatchObject({
      model: 'whisper-1',
      language: null,
      prompt: 'Grüße, “quoted”',
      responseFormat: 'verbose_json',
      granularities: ['word', 'segment'],
      filename: 'dir/chunk-00007.mp3',
      bytes: mp3.length,
      sha1: sha1(mp3),
      attempt: 0,
      status: 200,
    });
    expect(second).toMatchObject({ sha1: sha1(mp3), attempt: 1 });
    expect(first?.receivedAt).toBeGreaterThanOrEqual(first?.time ?? Infinity);
  });

  it('takes a file field sent as text for no file (400 missing file), as FormData.get did', async () => {
    const r = await send(fake, 'transcriptions', multipart([{ name: 'file', value: 'text' }, ...upload()]));
    expect(r.status).toBe(400);
    expect(errorOf(r).message).toBe("Missing required parameter: 'file'.");
    expect(fake.requests[0]).toMatchObject({ bytes: null, sha1: null, filename: null, model: 'whisper-1' });
    await stillServes();
  });

  for (const route of ['transcriptions', 'translations']) {
    it(`answers 400 'Could not parse multipart form' on ${route} for what is not a form`, async () => {
      const good = multipart(upload());
      const cases: Array<[string, Buffer, string | null]> = [
        ['no content type', good, null],
        ['text/plain', good, 'text/plain'],
        ['multipart without a boundary', good, 'multipart/form-data'],
        ['a form cut short', multipart(upload(), false), FORM_TYPE],
        ['no form at all', Buffer.from('just some bytes'), FORM_TYPE],
        ['a part cut off inside the file', good.subarray(0, good.length - 5000), FORM_TYPE],
      ];
      for (const [name, body, type] of cases) {
        const r = await send(fake, route, body, type);
        expect(r.status, name).toBe(400);
        expect(errorOf(r), name).toEqual({
          message: 'Could not parse multipart form',
          type: 'invalid_request_error',
          param: null,
          code: null,
        });
      }
      expect(fake.requests.map((e) => [e.status, e.outcome, e.sha1, e.durationS])).toEqual(
        cases.map(() => [400, 'answered', null, null]),
      );
      await stillServes();
    });

    it(`answers 413 on ${route} past the body's bound, with every byte of the body counted`, async () => {
      const body = multipart(upload(Buffer.alloc(1024 * 1024 + 2 * mp3.length, 7)));
      const r = await send(fake, route, body);
      expect(r.status).toBe(413);
      expect(errorOf(r).message).toBe(
        `Maximum content size limit (${1000 + mp3.length}) exceeded (${body.length} bytes read)`,
      );
      expect(fake.requests[0]).toMatchObject({ status: 413, outcome: 'answered', bytes: null, sha1: null });
      await stillServes();
    });
  }

  it('answers 413 for a file part over the cap inside the bound, after logging its size and sha1', async () => {
    const big = Buffer.alloc(mp3.length + 1001, 3);
    const body = multipart(upload(big));
    const r = await send(fake, 'transcriptions', body);
    expect(r.status).toBe(413);
    expect(errorOf(r).message).toBe(
      `Maximum content size limit (${1000 + mp3.length}) exceeded (${body.length} bytes read)`,
    );
    expect(fake.requests[0]).toMatchObject({ status: 413, bytes: big.length, sha1: sha1(big) });
    await stillServes();
  });

  it('answers nothing and logs the client gone for an upload cut off mid-body', async () => {
    const body = multipart(upload());
    await new Promise<void>((resolve) => {
      const req = http.request(`${fake.url}/audio/transcriptions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${FAKE_OPENAI_KEY}`,
          'content-type': FORM_TYPE,
          'content-length': body.length,
        },
      });
      req.on('error', () => resolve());
      req.on('response', () => resolve());
      req.write(body.subarray(0, body.length >> 1), () => {
        // Half the body sent: the server has the request; then the client goes away.
        setImmediate(() => req.destroy());
      });
    });
    await expect.poll(() => fake.requests[0]?.outcome).toBe('client_closed');
    expect(fake.requests[0]).toMatchObject({ status: null, answeredAt: null, bytes: null, sha1: null, model: null });
    await stillServes();
    // The cut-off upload counted as no attempt of that file.
    expect(fake.requests[1]?.attempt).toBe(0);
  });
});
