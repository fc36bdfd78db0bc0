import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, tempDataDir, upload, waitForJob } from '../helper.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { until } from '../support/until.ts';

/**
 * An `ffmpeg` first on the service's PATH that is the real one, except that the first silence scan is killed with
 * SIGKILL as it starts: what the kernel's OOM killer or an operator's kill -9 does to a running scan.
 */
async function killingFfmpeg(dir: string): Promise<string> {
  const bin = path.join(dir, 'bin');
  const marker = path.join(dir, 'killed-once');
  await mkdir(bin);
  await writeFile(
    path.join(bin, 'ffmpeg'),
    [
      '#!/bin/sh',
      'case "$*" in',
      `  *silencedetect*) if [ ! -e '${marker}' ]; then : > '${marker}'; kill -KILL $$; fi ;;`,
      'esac',
      'exec /usr/bin/ffmpeg "$@"',
      '',
    ].join('\n'),
  );
  await chmod(path.join(bin, 'ffmpeg'), 0o755);
  return bin;
}

describe('a silence scan killed from outside during a job', () => {
  const speech = speechFixture();
  let fake: FakeOpenAI | undefined;
  let service: ServiceProcess | undefined;
  let dataDir = '';
  let toolsDir = '';
  afterAll(async () => {
    if (service && service.child.exitCode === null && service.child.signalCode === null) await service.kill9();
    await fake?.close();
    if (dataDir) await removeDir(dataDir);
    if (toolsDir) await removeDir(toolsDir);
  });

  it('fails the job with INTERNAL tool_killed (not MEDIA_CORRUPT), leaves nothing, logs it, and the next job completes', async () => {
    fake = await startFakeOpenAI();
    dataDir = await tempDataDir();
    toolsDir = await tempDataDir();
    const bin = await killingFfmpeg(toolsDir);
    service = spawnService({
      DATA_DIR: dataDir,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '4',
      PATH: `${bin}:${process.env.PATH ?? ''}`,
    });
    const url = await service.url;

    const first = await upload(url, speech.wav);
    expect(first.status).toBe(202);
    const failed = await waitForJob(url, first.body.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({
      code: 'INTERNAL',
      message:
        'ffmpeg was killed (SIGKILL) while scanning the audio for silences, by something outside the service (the system out of memory, or an operator); the file is not at fault.',
    });
    // Nothing was sent for a job whose cuts were never planned, and nothing of it is left on disk.
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toEqual([]);
    // The files go just after the job is marked failed.
    await until(async () => (await jobFiles(dataDir)).length === 0, 'the failed job to leave no file');
    const line = service.lines.find((l) => l.includes('"msg":"job failed"') && l.includes(first.body.id));
    expect(JSON.parse(line ?? '{}')).toMatchObject({
      level: 50,
      code: 'INTERNAL',
      err: { details: { reason: 'tool_killed' } },
    });

    // The service still serves, says it is fine (the kill was one scan's, not ffmpeg's), and the next job completes.
    const health = await getJson<{ status: string; components: Record<string, { status: string }> }>(`${url}/health`);
    expect(health.body.status).toBe('ok');
    expect(health.body.components.ffmpeg?.status).toBe('ok');
    const second = await upload(url, speech.wav);
    expect(second.status).toBe(202);
    expect((await waitForJob(url, second.body.id)).status).toBe('completed');
  });
});
