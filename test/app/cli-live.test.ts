import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, type TestServer } from '../helper.ts';
import { heldJobEnv, startHeldFakeOpenAI } from '../support/held-fake-openai.ts';
import { until } from '../support/until.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'src/cli/main.ts');

const started: Array<FakeOpenAI | TestServer> = [];
afterEach(async () => {
  for (const s of started.splice(0).reverse()) {
    await s.close();
    if ('dataDir' in s) await removeDir(s.dataDir);
  }
});

/** The CLI from its sources in its own process (pipes, not a TTY), its output readable while it runs. */
function runLive(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: {
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
      HOME: os.tmpdir(),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { out, exited };
}

describe('chunkscribe CLI following a job live', () => {
  it('shows each chunk’s text on stderr while the job still runs, then writes the transcript to stdout', async () => {
    // Chunk 0 is answered; every later one waits until the test has seen chunk 0's text.
    const { fake, hold } = await startHeldFakeOpenAI();
    started.push(fake);
    const server = await startServer(heldJobEnv(fake));
    started.push(server);

    const run = runLive(['transcribe', speechFixture().mp3, '--poll-interval', '100'], {
      CHUNKSCRIBE_SERVER: server.url,
    });
    const textLine = /^chunk-[0-9a-f]{8}-\d+/m;
    await until(
      () => textLine.test(run.out.stderr),
      () => `chunk 0's text on stderr; so far:\n${run.out.stderr}`,
    );
    const id = /^(job_\S+) /m.exec(run.out.stderr)?.[1] ?? /as (job_\S+),/.exec(run.out.stderr)?.[1];
    expect(id).toBeDefined();
    const job = await getJson<{ status: string }>(`${server.url}/v1/jobs/${id}`);
    expect(job.body.status).toBe('processing');

    hold.on = false;
    expect(await run.exited, run.out.stderr).toBe(0);
    const lines = run.out.stderr.split('\n');
    const texts = lines.filter((l) => textLine.test(l));
    const transcript = await getJson<{ text: string; segments: Array<{ chunk: number }> }>(
      `${server.url}/v1/jobs/${id}/transcript`,
    );
    // One line per chunk, in order, together the transcript's text.
    expect(texts).toHaveLength(new Set(transcript.body.segments.map((s) => s.chunk)).size);
    expect(texts.join(' ')).toBe(transcript.body.text);
    // The first text came before the job was done: a progress line after it still counts chunks to go.
    const first = lines.findIndex((l) => textLine.test(l));
    const laterCounts = lines.slice(first).flatMap((l) => {
      const m = /: (\d+)\/(\d+) chunks/.exec(l);
      return m ? [[Number(m[1]), Number(m[2])]] : [];
    });
    expect(laterCounts.some(([done, total]) => (done as number) < (total as number))).toBe(true);
    // stdout is the transcript as `get` gives it, nothing of the live text twice.
    const txt = await fetch(`${server.url}/v1/jobs/${id}/transcript?format=txt`);
    expect(run.out.stdout).toBe(await txt.text());
  });
});
