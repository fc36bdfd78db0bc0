import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ApiError, type ApiClient } from '../../src/cli/api-client.ts';
import { CliError, type CommandContext } from '../../src/cli/context.ts';
import { inCliTerms } from '../../src/cli/error-text.ts';
import { getCommand } from '../../src/cli/job-commands.ts';
import { createProgressReporter } from '../../src/cli/progress-reporter.ts';

// The messages are the server's own (src/validate, src/http/routes, src/http/plugins), as a CLI user meets them.
describe('server errors in CLI terms', () => {
  it('names flags, not form fields, in INVALID_FIELD messages', () => {
    expect(
      inCliTerms('INVALID_FIELD', 'max_cost_usd "abc" is not a positive number of dollars; send e.g. "2.50"', {
        field: 'max_cost_usd',
      }),
    ).toBe('--max-cost-usd "abc" is not a positive number of dollars; give e.g. "2.50"');
    expect(inCliTerms('INVALID_FIELD', 'model "big" is not available; use one of: whisper-1', { field: 'model' })).toBe(
      '--model "big" is not available; use one of: whisper-1',
    );
    expect(
      inCliTerms('INVALID_FIELD', 'language must be lower-case: send "en" instead of "EN"', { field: 'language' }),
    ).toBe('--language must be lower-case: give "en" instead of "EN"');
    expect(
      inCliTerms(
        'INVALID_FIELD',
        'callback_url is not available: this server has no WEBHOOK_SECRET to sign callbacks with.',
        { field: 'callback_url' },
      ),
    ).toBe('--callback-url is not available: this server has no WEBHOOK_SECRET to sign callbacks with.');
    expect(
      inCliTerms('INVALID_FIELD', 'Idempotency-Key must be 1 to 255 characters, none of them control characters.', {
        field: 'Idempotency-Key',
      }),
    ).toBe('--idempotency-key must be 1 to 255 characters, none of them control characters.');
  });

  it('says --partial, --max-cost-usd and --api-key where the API names a parameter or a header', () => {
    expect(
      inCliTerms(
        'JOB_NOT_COMPLETED',
        'The job is processing; its transcript is ready when it is completed (or ask with partial=true).',
      ),
    ).toBe('The job is processing; its transcript is ready when it is completed (or ask with --partial).');
    expect(
      inCliTerms(
        'BUDGET_EXCEEDED',
        'The estimated cost $1.2000 is above your max_cost_usd ($1); raise max_cost_usd or send a shorter recording.',
      ),
    ).toBe(
      'The estimated cost $1.2000 is above your --max-cost-usd ($1); raise --max-cost-usd or send a shorter recording.',
    );
    const auth = inCliTerms('UNAUTHORIZED', 'Send a valid API key as `Authorization: Bearer <key>`.');
    expect(auth).toContain('--api-key');
    expect(auth).toContain('CHUNKSCRIBE_API_KEY');
    expect(auth).not.toMatch(/Authorization|Bearer/);
    // A service in open mode that serves its own machine only: a key would not help, where to run does.
    for (const reason of ['open_mode_remote', 'open_mode_proxied']) {
      const open = inCliTerms('UNAUTHORIZED', 'This server has no API keys: …', { reason });
      expect(open, reason).toContain('serves clients on its own machine only');
      expect(open, reason).toContain('OPEN_MODE_CLIENTS=any');
      expect(open, reason).not.toMatch(/Authorization|Bearer/);
    }
  });

  it('leaves plain words alone and messages without API terms as they are', () => {
    const text = 'The recording is 7300 s long; this server accepts at most 7200 s. Split it into shorter files.';
    expect(inCliTerms('DURATION_OUT_OF_RANGE', text, { duration_s: 7300 })).toBe(text);
    // "model" as a word in a message about another field stays a word.
    expect(
      inCliTerms('INVALID_FIELD', 'prompt has 1200 characters; shorten it to at most 1000', { field: 'prompt' }),
    ).toBe('--prompt has 1200 characters; shorten it to at most 1000');
  });
});

describe('get on a job without a full transcript', () => {
  function ctxWith(getTranscript: ApiClient['getTranscript']): CommandContext {
    const client: ApiClient = {
      getTranscript,
      createJob: () => Promise.reject(new Error('not used')),
      getJob: () => Promise.reject(new Error('not used')),
      jobEvents: () => Promise.reject(new Error('not used')),
      listJobs: () => Promise.reject(new Error('not used')),
      cancelJob: () => Promise.reject(new Error('not used')),
    };
    const io = {
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      env: {},
      signal: new AbortController().signal,
      now: () => 0,
      version: '0',
    };
    return {
      io,
      client,
      global: { server: 'http://127.0.0.1:1', apiKey: undefined, json: false, progress: false },
      reporter: createProgressReporter({ stream: io.stderr, mode: 'none' }),
    };
  }
  // The server's answer to GET /v1/jobs/:id/transcript before completion (src/http/routes/jobs.ts).
  const serverSays = (status: string) =>
    new ApiError(
      'JOB_NOT_COMPLETED',
      `The job is ${status}; its transcript is ready when it is completed (or ask with partial=true).`,
      409,
      { status },
    );

  it('names --partial and the follow command for this job, keeping the code and details', async () => {
    const err = await getCommand(
      'job_x',
      {},
      ctxWith(() => Promise.reject(serverSays('processing'))),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(err).toMatchObject({ code: 'JOB_NOT_COMPLETED', exitCode: 1, details: { status: 'processing' } });
    const message = (err as CliError).message;
    expect(message).toBe(
      'Job job_x is processing; its transcript is ready when it completes. Wait with `chunkscribe status job_x --follow`, or add --partial for the chunks finished so far.',
    );
    expect(message).not.toMatch(/partial=true/);
  });

  it('does not promise completion for a failed job', async () => {
    const err = await getCommand(
      'job_y',
      {},
      ctxWith(() => Promise.reject(serverSays('failed'))),
    ).catch((e: unknown) => e);
    expect((err as CliError).message).toBe(
      'Job job_y failed, so it has no full transcript; add --partial for the chunks that were transcribed.',
    );
  });
});
