import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI, type RequestLogEntry } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, tempDataDir, upload, waitForJob, type JobJson } from '../helper.ts';
import { onFakeProvider, spawnService, type ServiceProcess } from '../support/service-process.ts';
import { until } from '../support/until.ts';

const CONCURRENCY = 3;
const TAG = /chunk-([0-9a-f]{8})-\d+/g;

/** The real service process on the fake OpenAI server. */
function startProcess(dataDir: string, fake: FakeOpenAI, extraEnv: Record<string, string> = {}): ServiceProcess {
  return spawnService({ DATA_DIR: dataDir, ...onFakeProvider(fake.url, CONCURRENCY), ...extraEnv });
}

/** Pids of live processes whose command line names the directory (an ffmpeg the dead service left behind). */
async function processesUsing(dir: string): Promise<Array<{ pid: number; cmd: string }>> {
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) found.push({ pid: Number(name), cmd: cmd.replaceAll('\0', ' ').trim() });
  }
  return found;
}

/** The state letter of /proc/<pid>/stat ('T' = stopped), or '' when the process is gone. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
  } catch {
    return '';
  }
}

function openDb(dataDir: string, readOnly = true): DatabaseSync {
  return new DatabaseSync(path.join(dataDir, 'jobs.sqlite'), { readOnly });
}

/** The fake's sha8 tags of every chunk result the store holds: what must never be sent again. */
function storedTags(dataDir: string, jobId: string): Set<string> {
  const db = openDb(dataDir);
  try {
    const rows = db.prepare("SELECT result_json FROM chunks WHERE job_id = ? AND status = 'done'").all(jobId) as Array<{
      result_json: string;
    }>;
    return new Set(rows.flatMap((r) => [...r.result_json.matchAll(TAG)].map((m) => m[1]!)));
  } finally {
    db.close();
  }
}

const transcriptions = (fake: FakeOpenAI): RequestLogEntry[] =>
  fake.requests.filter((r) => r.path === '/v1/audio/transcriptions');
const sha8 = (r: RequestLogEntry): string => r.sha1!.slice(0, 8);

/** The transcript is whole and in order: one fake tag per chunk, chunks ascending, times non-decreasing. */
async function expectCompleteTranscript(url: string, job: JobJson): Promise<string[]> {
  const { body } = await getJson<{ segments: Array<{ start: number; chunk: number; text: string }> }>(
    `${url}/v1/jobs/${job.id}/transcript`,
  );
  const byChunk = new Map<number, Set<string>>();
  for (const seg of body.segments) {
    for (const m of seg.text.matchAll(TAG)) byChunk.set(seg.chunk, (byChunk.get(seg.chunk) ?? new Set()).add(m[1]!));
  }
  expect([...byChunk.keys()]).toEqual(Array.from({ length: job.progress.chunks_total }, (_, i) => i));
  for (const tags of byChunk.values()) expect(tags.size).toBe(1);
  const starts = body.segments.map((s) => s.start);
  expect(starts).toEqual([...starts].sort((a, b) => a - b));
  return [...byChunk.values()].flatMap((s) => [...s]);
}

/** The job directory pool holds nothing once every job has ended: leases re-taken at restart were released once. */
async function expectLeasesReleased(url: string): Promise<void> {
  const detail = async () =>
    (await getJson<{ components: Record<string, { detail: string }> }>(`${url}/health/ready`)).body.components.job_dirs
      ?.detail ?? '';
  await until(async () => (await detail()).startsWith('0 of '), 'every job directory lease to be released', {
    everyMs: 20,
  });
  expect(await detail()).toMatch(/^0 of \d+ leased, 0\.00 of/);
}

describe('kill -9 and restart on the same DATA_DIR', () => {
  const speech = speechFixture();
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    if (longDir) await removeDir(longDir);
  });
  // Three times the speech (24 chunks), cut by ffmpeg's segment muxer (an mp3 is cut in-process, with no ffmpeg to
  // pause). 24-bit PCM, which no OpenAI model takes as it is: the chunks are encoded, so ffmpeg takes seconds over
  // the file rather than the milliseconds a copy of it takes, and it cannot be done before the look-ahead fills
  // and the slicer pauses it (a copied WAV sometimes was, and the test then waited for a pause that never came).
  let longDir = '';
  let longSpeech = '';
  beforeAll(async () => {
    longDir = await tempDataDir();
    longSpeech = path.join(longDir, 'speech-x3.wav');
    execFileSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-stream_loop',
      '2',
      '-i',
      speech.wav,
      '-c:a',
      'pcm_s24le',
      longSpeech,
    ]);
  });

  async function setup(latencyMs: number) {
    const fake = await startFakeOpenAI({ latencyMs });
    const dataDir = await tempDataDir();
    cleanups.push(
      () => fake.close(),
      () => removeDir(dataDir),
    );
    const start = (extraEnv: Record<string, string> = {}) => {
      const proc = startProcess(dataDir, fake, extraEnv);
      cleanups.push(async () => {
        if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.kill9();
      });
      return proc;
    };
    return { fake, dataDir, start };
  }

  /** A kill before any 202: after the restart nothing of that upload is left, and the service takes a new job. */
  async function expectCleanRestart(env: Awaited<ReturnType<typeof setup>>): Promise<void> {
    const second = env.start();
    const base = await second.url;
    expect(await jobFiles(env.dataDir)).toEqual([]);
    expect((await getJson<{ items: unknown[] }>(`${base}/v1/jobs`)).body.items).toEqual([]);
    const created = await upload(base, speech.mp3);
    expect(created.status).toBe(202);
    expect((await waitForJob(base, created.body.id)).status).toBe('completed');
    await expectLeasesReleased(base);
    second.child.kill('SIGTERM');
    await second.exited;
    expect(await jobFiles(env.dataDir)).toEqual([]);
    expect(await processesUsing(env.dataDir)).toEqual([]);
  }

  /** After the restart: the job completes whole, nothing is left on disk, no process of the dead service lives on. */
  async function finishAfterRestart(env: Awaited<ReturnType<typeof setup>>, jobId: string) {
    const second = env.start();
    const url = await second.url;
    expect(readFileSync(path.join(env.dataDir, 'service.lock'), 'utf8').split(' ')[0]).toBe(String(second.child.pid));
    const job = await waitForJob(url, jobId);
    expect(job.status).toBe('completed');
    const tags = await expectCompleteTranscript(url, job);
    await expectLeasesReleased(url);
    // The files go just after the job is marked completed; a graceful stop waits for that.
    second.child.kill('SIGTERM');
    await second.exited;
    expect(second.child.exitCode).toBe(0);
    expect(await jobFiles(env.dataDir)).toEqual([]);
    expect(await processesUsing(env.dataDir)).toEqual([]);
    return { job, tags };
  }

  it('leaves no file and no row when killed while an upload is half sent', async () => {
    const env = await setup(0);
    const first = env.start();
    const url = new URL(await first.url);
    const audio = readFileSync(speech.wav);
    const boundary = 'crashtestboundary';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/v1/jobs',
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': head.length + audio.length + tail.length,
      },
    });
    req.on('error', () => undefined);
    req.write(Buffer.concat([head, audio.subarray(0, audio.length >> 1)]));

    let partial = '';
    await until(async () => {
      const upload = (await jobFiles(env.dataDir)).find((f) => f.endsWith('upload'));
      partial = upload ? path.join(env.dataDir, 'jobs', upload) : '';
      return partial !== '' && (await stat(partial)).size > 0;
    }, 'the upload to reach the disk');
    await first.kill9();
    req.destroy();
    expect((await stat(partial)).size).toBeLessThan(audio.length);

    await expectCleanRestart(env);
  });

  it('leaves no row and no file when killed while the upload is being probed (before any 202)', async () => {
    const env = await setup(0);
    // An ffprobe on PATH that stops itself when it is asked about a job file: the kill lands mid-validation.
    const bin = path.join(env.dataDir, 'bin');
    const marker = path.join(env.dataDir, 'probing.pid');
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'ffprobe'),
      `#!/bin/sh\ncase "$*" in *"${env.dataDir}/jobs/"*) echo $$ > "${marker}"; kill -STOP $$;; esac\nexec ${execFileSync('sh', ['-c', 'command -v ffprobe']).toString().trim()} "$@"\n`,
    );
    await chmod(path.join(bin, 'ffprobe'), 0o755);
    const first = env.start({ PATH: `${bin}:${process.env.PATH ?? ''}` });
    const answer = upload(await first.url, speech.mp3).then(
      (res) => res.status,
      () => 'no answer',
    );
    await until(() => existsSync(marker) && readFileSync(marker, 'utf8').trim() !== '', 'the upload to be probed');
    const uploaded = (await jobFiles(env.dataDir)).filter((f) => f.endsWith('upload'));
    expect(uploaded).toHaveLength(1);
    expect((await stat(path.join(env.dataDir, 'jobs', uploaded[0]!))).size).toBe((await stat(speech.mp3)).size);
    await first.kill9();
    expect(await answer).toBe('no answer');
    // The stopped probe goes on as a real ffprobe and ends by itself.
    process.kill(Number(readFileSync(marker, 'utf8')), 'SIGCONT');

    await expectCleanRestart(env);
  });

  it('finishes a job that was accepted but still queued when killed', async () => {
    const env = await setup(0);
    // The first job's requests never answer: it holds the only job slot, and the second waits queued.
    env.fake.script(() => 'stall');
    const first = env.start({ MAX_CONCURRENT_JOBS: '1' });
    const url = await first.url;
    const running = await upload(url, speech.mp3);
    const queued = await upload(url, speech.mp3);
    expect([running.status, queued.status]).toEqual([202, 202]);
    await until(() => transcriptions(env.fake).length > 0, 'the first job to reach the provider');
    const db = openDb(env.dataDir);
    const status = (id: string) =>
      (db.prepare('SELECT status FROM jobs WHERE id = ?').get(id) as { status: string }).status;
    expect([status(running.body.id), status(queued.body.id)]).toEqual(['processing', 'queued']);
    await first.kill9();
    db.close();
    expect(transcriptions(env.fake).filter((r) => r.status === 200)).toEqual([]);

    env.fake.script(() => undefined);
    const second = env.start({ MAX_CONCURRENT_JOBS: '1' });
    const base = await second.url;
    for (const id of [running.body.id, queued.body.id]) {
      const job = await waitForJob(base, id);
      expect(job.status).toBe('completed');
      await expectCompleteTranscript(base, job);
    }
    await expectLeasesReleased(base);
    second.child.kill('SIGTERM');
    await second.exited;
    expect(await jobFiles(env.dataDir)).toEqual([]);
    expect(await processesUsing(env.dataDir)).toEqual([]);
  });

  /** Kills the service at `moment`, restarts it, and checks what the second run sent to the provider. */
  async function killAndResume(
    file: string,
    moment: (env: Awaited<ReturnType<typeof setup>>, jobId: string) => Promise<void>,
  ) {
    const env = await setup(400);
    const first = env.start();
    const created = await upload(await first.url, file);
    expect(created.status).toBe(202);
    const jobId = created.body.id;
    await moment(env, jobId);
    await first.kill9();

    const runOne = transcriptions(env.fake).length;
    const sentBefore = new Set(
      transcriptions(env.fake)
        .filter((r) => r.sha1)
        .map(sha8),
    );
    const stored = storedTags(env.dataDir, jobId);
    const { job } = await finishAfterRestart(env, jobId);
    const runTwo = transcriptions(env.fake).slice(runOne);
    // A chunk whose result was stored is never sent again; only those in flight at the kill may be.
    expect(runTwo.filter((r) => stored.has(sha8(r)))).toEqual([]);
    expect(runTwo.filter((r) => sentBefore.has(sha8(r))).length).toBeLessThanOrEqual(CONCURRENCY);
    expect(stored.size + runTwo.length).toBe(job.progress.chunks_total);
    return { stored, runTwo };
  }

  it('finishes the job and ends the paused ffmpeg when killed while slicing under back-pressure', async () => {
    await killAndResume(longSpeech, async (env) => {
      // The slicer SIGSTOPs ffmpeg when its look-ahead is full: a kill then leaves a stopped ffmpeg behind.
      await until(
        async () => (await processesUsing(env.dataDir)).some((p) => processState(p.pid) === 'T'),
        'ffmpeg paused by back-pressure',
        { everyMs: 1 },
      );
    });
  });

  it('finishes the job without re-sending stored chunks when killed during transcription', async () => {
    const { stored, runTwo } = await killAndResume(speech.mp3, async (env, jobId) => {
      // A stored result, not a count of answers: the fake answers a round's requests together (latency alone), so
      // all of the first round can be answered and none stored yet.
      await until(() => storedTags(env.dataDir, jobId).size >= 1, 'a chunk result stored', { everyMs: 1 });
    });
    // The kill landed mid-transcription: some results stored, chunks left for the second run (rounds of 400 ms).
    expect(stored.size).toBeGreaterThanOrEqual(1);
    expect(runTwo.length).toBeGreaterThanOrEqual(1);
  });

  it('finishes the job from the stored chunks when killed while stitching', async () => {
    const env = await setup(20);
    const first = env.start();
    const url = await first.url;
    // Makes saving the transcript hang (a cross join that runs for minutes), so the kill lands in the stitching stage.
    const db = openDb(env.dataDir, false);
    db.exec(`CREATE TABLE crash_pad (x INTEGER);
      INSERT INTO crash_pad WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000) SELECT x FROM c;
      CREATE TRIGGER crash_hang_stitch BEFORE UPDATE OF transcript_json ON jobs WHEN NEW.transcript_json IS NOT NULL
      BEGIN SELECT count(*) FROM crash_pad a, crash_pad b, crash_pad c; END;`);
    db.close();

    const created = await upload(url, speech.mp3);
    expect(created.status).toBe(202);
    const jobId = created.body.id;
    const reader = openDb(env.dataDir);
    const stage = () =>
      (reader.prepare('SELECT stage FROM jobs WHERE id = ?').get(jobId) as { stage: string | null }).stage;
    await until(() => stage() === 'stitching', 'the stitching stage', { everyMs: 2 });
    await first.kill9();
    const row = reader.prepare('SELECT status, slicing_done, transcript_json FROM jobs WHERE id = ?').get(jobId);
    reader.close();
    expect(row).toEqual({ status: 'processing', slicing_done: 1, transcript_json: null });

    const fix = openDb(env.dataDir, false);
    fix.exec('DROP TRIGGER crash_hang_stitch; DROP TABLE crash_pad;');
    fix.close();
    const runOne = transcriptions(env.fake).length;
    const { job, tags } = await finishAfterRestart(env, jobId);
    expect(transcriptions(env.fake).slice(runOne)).toEqual([]);
    expect(new Set(tags)).toEqual(
      new Set(
        transcriptions(env.fake)
          .filter((r) => r.status === 200)
          .map(sha8),
      ),
    );
    expect(tags).toHaveLength(job.progress.chunks_total);
  });
});
