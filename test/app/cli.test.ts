import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, type TestServer } from '../helper.ts';
import { runCommand, type CommandRun } from '../support/run-command.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'src/cli/main.ts');
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

/** The CLI from its sources, as a user runs it (see runCommand). */
function cli(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  return runCommand(process.execPath, [CLI, ...args], env, ROOT);
}

function srtCues(body: string): Array<{ start: string; end: string; text: string }> {
  const re = /^\d+\n(\d{2}:\d{2}:\d{2},\d{3}) --> (\d{2}:\d{2}:\d{2},\d{3})\n((?:.+\n?)+)/gm;
  return [...body.matchAll(re)].map((m) => ({ start: m[1]!, end: m[2]!, text: m[3]!.trim() }));
}

describe('chunkscribe CLI against the real service', () => {
  const speech = speechFixture();
  let server: TestServer;
  let work: string;
  let env: Record<string, string>;
  let completedId = '';

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', CHUNK_SECONDS: '10' });
    work = await mkdtemp(path.join(os.tmpdir(), 'cs-cli-'));
    env = { CHUNKSCRIBE_SERVER: server.url };
  });
  afterAll(async () => {
    await server.close();
    await removeDir(server.dataDir);
    await removeDir(work);
  });

  // A generous bound: pocketsphinx on 2 shared cores can be slow when other suites run beside this one.
  it(
    'transcribes a recording to an SRT file with plain progress lines when stderr is not a TTY',
    { timeout: 300_000 },
    async () => {
      const out = path.join(work, 'talk.srt');
      const run = await cli(
        ['transcribe', speech.wav, '--format', 'srt', '-o', out, '--language', 'en', '--poll-interval', '200'],
        env,
      );
      expect(run.stderr).not.toMatch(ANSI);
      expect(run.code, run.stderr).toBe(0);

      const cues = srtCues(await readFile(out, 'utf8'));
      expect(cues.length).toBeGreaterThan(3);
      expect(
        cues
          .map((c) => c.text)
          .join(' ')
          .toLowerCase(),
      ).toMatch(/\b(selfish|respectable)\b/);

      const lines = run.stderr.split('\n');
      expect(lines.filter((l) => /^upload \d+% \(/.test(l)).length).toBeGreaterThanOrEqual(2);
      expect(lines.some((l) => /^upload 100% /.test(l))).toBe(true);
      const jobLines = lines.filter((l) => /^job_\S+ /.test(l));
      // The stage in words, audio done of the whole, and the time this command has been waiting.
      expect(
        jobLines.some((l) =>
          /^job_\S+ transcribing( \(.+\))?: \d+\/\d+ chunks [\d.]+%, audio .+ of .+, elapsed /.test(l),
        ),
      ).toBe(true);
      expect(jobLines.at(-1)).toMatch(
        /^job_\S+ done: (\d+)\/\1 chunks 100%, audio (.+) of \2, ([\d.]+x real time, )?elapsed \d/,
      );
      // Speed is measured from the first state seen: given audio done after it, the last line has one.
      if (/, audio 0s of /.test(jobLines[0]!)) expect(jobLines.at(-1)).toMatch(/, [\d.]+x real time, /);
      expect(run.stderr).toContain(`wrote ${out}`);
      // stdout carries only results; the transcript went to the file.
      expect(run.stdout).toBe('');
      completedId = /^(job_\S+) /.exec(jobLines.at(-1)!)![1]!;
    },
  );

  it('exits non-zero with the server error code when the file is not audio', async () => {
    const notes = path.join(work, 'notes.txt');
    await writeFile(notes, 'meeting notes, not a recording\n');
    const run = await cli(['transcribe', notes, '-o', path.join(work, 'notes.srt')], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error: UNSUPPORTED_MEDIA: \S.+/m);

    const json = await cli(['--json', 'transcribe', notes, '--no-progress'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      error: { code: 'UNSUPPORTED_MEDIA', message: expect.any(String) },
    });
  });

  it('lists, shows and downloads jobs as JSON and as text', async () => {
    expect(completedId).toMatch(/^job_/);
    const list = await cli(['jobs', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const page = JSON.parse(list.stdout) as {
      items: Array<{ id: string; status: string }>;
      next_cursor: string | null;
    };
    expect(page.items.find((j) => j.id === completedId)?.status).toBe('completed');

    const table = await cli(['jobs'], env);
    expect(table.stdout).toMatch(new RegExp(`^${completedId}\\s+completed\\s`, 'm'));

    const status = await cli(['status', completedId, '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({
      id: completedId,
      status: 'completed',
      progress: { percent: 100 },
    });

    const vtt = await cli(['get', completedId, '--format', 'vtt'], env);
    expect(vtt.code).toBe(0);
    expect(vtt.stdout.startsWith('WEBVTT')).toBe(true);
  });

  it('cancels a job it did not wait for, after which the job is gone', async () => {
    const started = await cli(['transcribe', speech.mp3, '--no-wait', '--no-progress'], env);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    expect(id).toMatch(/^job_[A-Za-z0-9_-]+$/);

    const cancel = await cli(['cancel', id], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain(`cancelled and deleted ${id}`);

    const gone = await cli(['status', id], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^error: NOT_FOUND: /m);
  });

  it('words a refused field as the flag the user typed, and the refused upload leaves no job', async () => {
    const before = JSON.parse((await cli(['jobs', '--json'], env)).stdout) as { items: unknown[] };
    const run = await cli(['transcribe', speech.wav, '--max-cost-usd', 'abc', '--no-progress'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'error: INVALID_FIELD: --max-cost-usd "abc" is not a positive number of dollars; give e.g. "2.50"\n',
    );
    const after = JSON.parse((await cli(['jobs', '--json'], env)).stdout) as { items: unknown[] };
    expect(after.items).toHaveLength(before.items.length);
  });

  it('says which server it could not reach, and rejects usage errors with exit code 2', async () => {
    const down = await cli(['jobs'], { CHUNKSCRIBE_SERVER: 'http://127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^error: CONNECTION_FAILED: Cannot reach http:\/\/127\.0\.0\.1:1 /m);

    const usage = await cli(['transcribe'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing required argument 'file'/);

    const missing = await cli(['transcribe', path.join(work, 'nope.wav')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`error: FILE_MISSING: Cannot read ${path.join(work, 'nope.wav')}: no such file.\n`);
  });
});

describe('chunkscribe CLI with API keys', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', API_KEYS: 'k-one,k-two' });
  });
  afterAll(async () => {
    await server.close();
    await removeDir(server.dataDir);
  });

  it('sends the key from --api-key or CHUNKSCRIBE_API_KEY, and reports UNAUTHORIZED without one', async () => {
    const none = await cli(['jobs'], { CHUNKSCRIBE_SERVER: server.url });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error: UNAUTHORIZED: .*--api-key or the CHUNKSCRIBE_API_KEY environment variable/m);
    expect(none.stderr).not.toMatch(/Authorization|Bearer/);

    const fromEnv = await cli(['jobs', '--json'], { CHUNKSCRIBE_SERVER: server.url, CHUNKSCRIBE_API_KEY: 'k-one' });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toEqual({ items: [], next_cursor: null });

    const fromFlag = await cli(['--server', server.url, '--api-key', 'k-two', 'jobs'], {});
    expect(fromFlag.code, fromFlag.stderr).toBe(0);
    expect(fromFlag.stdout).toBe('no jobs\n');
  });
});
