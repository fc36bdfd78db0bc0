import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, upload } from '../helper.ts';
import { useFakeProviderService } from '../support/fake-provider-service.ts';

const A = 'jobs-per-key-a-0123456789';
const B = 'jobs-per-key-b-0123456789';
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

/**
 * An accepted job keeps its job directory until it ends. The fake never answers a transcription, so every job
 * stays live: before JOBS_PER_KEY_MAX, key A's queued jobs took every directory of JOB_DIRS_MAX and key B got
 * 503 SERVER_BUSY until they ended (hours, for long recordings).
 */
describe('jobs one key may have live at once (JOBS_PER_KEY_MAX, default half of JOB_DIRS_MAX)', () => {
  // The stalled jobs are not waited for at the close.
  const start = useFakeProviderService({ API_KEYS: `${A},${B}`, JOB_DIRS_MAX: '4', SHUTDOWN_TIMEOUT_MS: '100' });
  const speech = speechFixture();
  it("refuses a key's upload past the limit with 429 before reading it, lets the other key in, and counts only live jobs", async () => {
    const { server } = await start({ faults: () => 'stall' });
    const first = await upload(server.url, speech.wav, { language: 'en' }, { ...auth(A), 'idempotency-key': 'a-1' });
    const second = await upload(server.url, speech.wav, { language: 'en' }, auth(A));
    expect([first.status, second.status]).toEqual([202, 202]);
    const before = await jobFiles(server.dataDir);

    const third = await upload(server.url, speech.wav, { language: 'en' }, auth(A));
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(third.body.error).toMatchObject({ code: 'RATE_LIMITED', details: { reason: 'concurrent_jobs', limit: 2 } });
    // Before any of the body: the head alone gets the answer.
    const { hostname, port } = new URL(server.url);
    const headOnly = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: hostname, port: Number(port) });
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.write(
        `POST /v1/jobs HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${A}\r\n` +
          'content-type: multipart/form-data; boundary=b\r\ncontent-length: 1000000\r\n\r\n',
      );
    });
    expect(headOnly).toMatch(/^HTTP\/1\.1 429 /);
    // The OpenAI-compatible route takes the same upload step.
    const form = new FormData();
    form.append('model', 'whisper-1');
    form.append('file', new Blob([new Uint8Array(1000)]), 'a.wav');
    const openai = await fetch(`${server.url}/v1/audio/transcriptions`, {
      method: 'POST',
      body: form,
      headers: auth(A),
    });
    expect(openai.status).toBe(429);
    expect(await openai.json()).toMatchObject({ error: { code: 'rate_limited', type: 'rate_limit_error' } });
    expect(await jobFiles(server.dataDir)).toEqual(before);

    // A repeated Idempotency-Key makes no job: it still answers the job it made.
    const replay = await upload(server.url, speech.wav, { language: 'en' }, { ...auth(A), 'idempotency-key': 'a-1' });
    expect(replay.status).toBe(202);
    expect(replay.body.id).toBe(first.body.id);

    const other = await upload(server.url, speech.wav, { language: 'en' }, auth(B));
    expect(other.status).toBe(202);

    // Only live jobs count: once one is cancelled, the key may upload again.
    const list = await getJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/jobs`, auth(A));
    const cancelled = await fetch(`${server.url}/v1/jobs/${list.body.items[0]!.id}`, {
      method: 'DELETE',
      headers: auth(A),
    });
    expect(cancelled.status).toBe(204);
    const again = await upload(server.url, speech.wav, { language: 'en' }, auth(A));
    expect(again.status).toBe(202);
  });
});
