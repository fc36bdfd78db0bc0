import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { longSpeechFixture } from '../fixtures/long-speech.ts';
import { getJson, removeDir, startServer, type TestServer } from '../helper.ts';
import { runCommand } from '../support/run-command.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEY = 'readme-example-key-0123456789';

/** The fenced code blocks of the README's OpenAI SDK section, by the file name their first line gives. */
async function readmeExamples(): Promise<Map<string, string>> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## Use it from the OpenAI SDK\n')[1]?.split('\n## ')[0] ?? '';
  const blocks = new Map<string, string>();
  for (const m of section.matchAll(/```(?:js|python)\n([\s\S]*?)```/g)) {
    const code = m[1]!;
    const name = /^(?:\/\/|#) (\S+)\n/.exec(code)?.[1];
    if (name) blocks.set(name, code);
  }
  return blocks;
}

function hasPythonOpenAI(): boolean {
  try {
    execFileSync('python3', ['-c', 'import openai'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe("the README's OpenAI SDK examples, run as written on a 2-hour recording", () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let work: string;
  let examples: Map<string, string>;
  const long = longSpeechFixture(2);

  beforeAll(async () => {
    examples = await readmeExamples();
    fake = await startFakeOpenAI();
    server = await startServer({
      API_KEYS: KEY,
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      // The service's own default chunk length: 12 chunks for two hours.
      CHUNK_SECONDS: '600',
      RATE_LIMIT_RPM: '6000',
      EVENT_POLL_MS: '100',
    });
    work = await mkdtemp(path.join(os.tmpdir(), 'cs-readme-'));
    await symlink(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'), 'dir');
    await symlink(long.mp3, path.join(work, 'two-hours.mp3'));
    for (const [name, code] of examples) await writeFile(path.join(work, name), code);
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
    if (server) await removeDir(server.dataDir);
    if (work) await removeDir(work);
  });

  /** Runs a README example as the README says: in its directory, with the two environment variables (127.0.0.1). */
  async function run(file: string, args: string[]) {
    const env = { OPENAI_BASE_URL: `${server.url}/v1`, OPENAI_API_KEY: KEY };
    const result = await runCommand(file, args, env, work);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  }

  /** The newest job's transcript text, which the example must have printed. */
  async function newestJob() {
    const jobs = await getJson<{ items: Array<{ id: string; status: string; audio: { duration_s: number } }> }>(
      `${server.url}/v1/jobs?limit=1`,
      { authorization: `Bearer ${KEY}` },
    );
    const job = jobs.body.items[0]!;
    const t = await getJson<{ text: string; segments: unknown[] }>(`${server.url}/v1/jobs/${job.id}/transcript`, {
      authorization: `Bearer ${KEY}`,
    });
    return { job, transcript: t.body };
  }

  it('has the examples', () => {
    expect([...examples.keys()]).toEqual(['transcribe.mjs', 'transcribe-stream.mjs', 'transcribe.py']);
  });

  it('transcribe.mjs: verbose_json for the whole two hours', async () => {
    const out = await run(process.execPath, ['transcribe.mjs']);
    const { job, transcript } = await newestJob();
    expect(job.status).toBe('completed');
    expect(job.audio.duration_s).toBeCloseTo(long.durationS, 0);
    expect(out).toBe(`${transcript.segments.length} segments, ${job.audio.duration_s} s\n${transcript.text}\n`);
    expect(fake.requests.filter((r) => r.path === '/v1/audio/transcriptions')).toHaveLength(12);
  }, 300_000);

  it('transcribe-stream.mjs: the text as it comes, then a newline', async () => {
    const out = await run(process.execPath, ['transcribe-stream.mjs']);
    const { job, transcript } = await newestJob();
    expect(job.status).toBe('completed');
    expect(out).toBe(`${transcript.text}\n`);
  }, 300_000);

  // Debian bookworm has no python3-openai package; where the module is installed, the example runs too.
  it.skipIf(!hasPythonOpenAI())(
    'transcribe.py: both forms',
    async () => {
      const out = await run('python3', ['transcribe.py']);
      const { job, transcript } = await newestJob();
      expect(job.status).toBe('completed');
      expect(out.endsWith(`${transcript.text}\n`)).toBe(true);
    },
    600_000,
  );
});
