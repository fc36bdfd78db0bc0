import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { jobFiles, removeDir, startServer, upload, waitForJob, type TestServer } from '../helper.ts';
import { expectError, expectNothingLeft, ffmpeg, listedJobIds } from './hostile-kit.ts';

interface DryRunJson {
  dry_run: boolean;
  audio: Record<string, unknown>;
  estimate: { cost_usd: number; provider: string; model: string };
  chunks_planned: number;
}

const speech = speechFixture();

describe('dry_run=true with the local engine', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(server?.dataDir ?? '');
  });

  it('answers 200 with the audio, the estimate and the planned chunks, and creates no job and no files', async () => {
    const res = await upload(server.url, speech.wav, { dry_run: 'true', language: 'en' });
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    const body = res.body as unknown as DryRunJson;
    expect(Object.keys(body).sort()).toEqual(['audio', 'chunks_planned', 'dry_run', 'estimate']);
    expect(body.dry_run).toBe(true);
    expect(body.audio).toMatchObject({
      filename: 'speech.wav',
      format: 'wav',
      codec: 'pcm_s16le',
      sample_rate: 16000,
      channels: 1,
    });
    expect(body.audio).not.toHaveProperty('demuxer');
    expect(body.audio.duration_s).toBeCloseTo(speech.durationS, 0);
    expect(body.estimate).toEqual({ cost_usd: expect.any(Number), provider: 'local', model: 'pocketsphinx-en-us' });
    // CHUNK_SECONDS is 10 in the test server: ~31 s plans 3 or 4 chunks.
    expect(body.chunks_planned).toBeGreaterThanOrEqual(3);
    expect(body.chunks_planned).toBeLessThanOrEqual(4);
    await expectNothingLeft(server);
  });

  it('still refuses bad media on a dry run', async () => {
    const res = await upload(server.url, new Blob(['#EXTM3U\n#EXTINF:1,\n/etc/passwd\n']), { dry_run: 'true' });
    expectError(res, 415, 'UNSUPPORTED_MEDIA');
    await expectNothingLeft(server);
  });
});

describe('max_cost_usd and dry_run with the openai engine against the fake server', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  const transcriptions = () => fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      RATE_LIMIT_RPM: '6000',
      RATE_LIMIT_BURST: '50',
    });
  });
  afterEach(() => fake.reset());
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
  });

  it('answers 422 BUDGET_EXCEEDED with the estimate and the limit, and sends nothing to the provider', async () => {
    const res = await upload(server.url, speech.mp3, { model: 'whisper-1', max_cost_usd: '0.0001' });
    expectError(res, 422, 'BUDGET_EXCEEDED', { max_cost_usd: 0.0001, limit: 'request' });
    const estimate = res.body.error.details?.estimate_usd as number;
    // whisper-1 is $0.006 a minute: ~31 s is about $0.003.
    expect(estimate).toBeGreaterThan(0.0001);
    expect(estimate).toBeCloseTo((speech.durationS / 60) * 0.006, 3);
    expect(transcriptions()).toEqual([]);
    await expectNothingLeft(server);
  });

  it('checks the budget on a dry run too, and answers the estimate when it fits', async () => {
    const over = await upload(server.url, speech.mp3, { max_cost_usd: '0.0001', dry_run: 'true' });
    expectError(over, 422, 'BUDGET_EXCEEDED', { limit: 'request' });
    const fits = await upload(server.url, speech.mp3, { max_cost_usd: '1', dry_run: 'true' });
    expect(fits.status).toBe(200);
    const body = fits.body as unknown as DryRunJson;
    expect(body.estimate.provider).toBe('openai');
    expect(body.estimate.model).toBe('whisper-1');
    expect(body.estimate.cost_usd).toBe(over.body.error.details?.estimate_usd);
    expect(transcriptions()).toEqual([]);
    await expectNothingLeft(server);
  });

  it('answers 400 INVALID_FIELD to a max_cost_usd that is not a positive number', async () => {
    for (const value of ['-1', '0', 'ten', '1e3']) {
      const res = await upload(server.url, speech.mp3, { max_cost_usd: value });
      expectError(res, 400, 'INVALID_FIELD', { field: 'max_cost_usd' });
    }
    expect(transcriptions()).toEqual([]);
    await expectNothingLeft(server);
  });

  it('accepts a job within its budget, which then reaches the provider (the detector above can see requests)', async () => {
    const res = await upload(server.url, speech.mp3, { max_cost_usd: '1' });
    expect(res.status).toBe(202);
    const job = await waitForJob(server.url, res.body.id);
    expect(job.status).toBe('completed');
    expect(transcriptions().length).toBe(job.progress.chunks_total);
    expect(await listedJobIds(server)).toEqual([res.body.id]);
    const del = await fetch(`${server.url}/v1/jobs/${res.body.id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await jobFiles(server.dataDir)).toEqual([]);
  });
});

describe('the server-wide MAX_JOB_COST_USD cap', () => {
  let fake: FakeOpenAI;
  let server: TestServer;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      MAX_JOB_COST_USD: '0.001',
    });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
  });

  it('answers 422 BUDGET_EXCEEDED with limit "server" even when the request allows more', async () => {
    const res = await upload(server.url, speech.mp3, { max_cost_usd: '5' });
    expectError(res, 422, 'BUDGET_EXCEEDED', { max_cost_usd: 0.001, limit: 'server' });
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toEqual([]);
    await expectNothingLeft(server);
  });
});

describe("the estimate of a 2 h recording at the openai engine's own chunking (600 s, 1 s overlap)", () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cs-estimate-'));
  const file = path.join(dir, 'two-hours.mp3');

  beforeAll(async () => {
    // 10 min of 8 kHz mp3 as bare frames (no tag, no info frame), twelve times over: 2 h in a fraction of the
    // time encoding it would take. Frames join end to end.
    const piece = path.join(dir, 'piece.mp3');
    ffmpeg(
      ['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '600', '-c:a', 'libmp3lame', '-b:a', '8k'].concat([
        '-write_xing',
        '0',
        '-id3v2_version',
        '0',
        piece,
      ]),
    );
    writeFileSync(file, Buffer.concat(Array.from({ length: 12 }, () => readFileSync(piece))));
    fake = await startFakeOpenAI();
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: undefined,
      CHUNK_OVERLAP_SECONDS: undefined,
    });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    await removeDir(server?.dataDir ?? '');
    rmSync(dir, { recursive: true, force: true });
  });

  it("bills every planned cut's overlap (whole 72 ms frames: 1.008 s), and the budget holds to it", async () => {
    const res = await upload(server.url, file, { dry_run: 'true' });
    expect(res.status).toBe(200);
    const body = res.body as unknown as DryRunJson;
    const durationS = body.audio.duration_s as number;
    expect(durationS).toBeGreaterThan(7200);
    expect(durationS).toBeLessThan(7205);
    expect(body.chunks_planned).toBe(12);
    // 11 cuts, each of which may miss every pause: the chunk after it starts 14 frames (1.008 s) earlier.
    const usd = (seconds: number) => Math.round((seconds / 60) * 0.006 * 1e6) / 1e6;
    expect(body.estimate).toEqual({ cost_usd: usd(durationS + 11 * 1.008), provider: 'openai', model: 'whisper-1' });
    expect(body.estimate.cost_usd - usd(durationS)).toBeCloseTo(0.001109, 6);

    // A budget the duration alone would fit is not enough.
    const over = await upload(server.url, file, { max_cost_usd: String(usd(durationS)) });
    expectError(over, 422, 'BUDGET_EXCEEDED', { estimate_usd: body.estimate.cost_usd, limit: 'request' });
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toEqual([]);
    await expectNothingLeft(server);
  });
});
