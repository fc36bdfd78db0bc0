import { describe, expect, it } from 'vitest';
import { ApiError, type ApiClient } from '../../src/cli/api-client.ts';
import type { ServerSentEvent } from '../../src/cli/event-stream.ts';
import { followJob } from '../../src/cli/follow-job.ts';
import type { JobResource } from '../../src/http/schemas.ts';
import { JOB_EXAMPLE } from '../../src/http/examples.ts';

const job = (status: JobResource['status']): JobResource => ({ ...(JOB_EXAMPLE as JobResource), status });
const text = (id: string, chunk: number, t: string): ServerSentEvent => ({
  id,
  event: 'text',
  data: JSON.stringify({ chunk, start: 0, end: 1, text: t }),
});
const progress = (id: string): ServerSentEvent => ({ id, event: 'progress', data: '{}' });
const end = (id: string): ServerSentEvent => ({ id, event: 'end', data: '{"status":"completed","error":null}' });

/** A client whose streams are scripted: each call to jobEvents takes the next entry (events, or an error to throw). */
function scripted(streams: Array<ServerSentEvent[] | Error | { cutAfter: ServerSentEvent[] }>, states: JobResource[]) {
  const asked: Array<string | null> = [];
  let polls = 0;
  const client: Pick<ApiClient, 'getJob' | 'jobEvents'> = {
    async getJob() {
      const state = states[Math.min(polls, states.length - 1)] as JobResource;
      polls += 1;
      return state;
    },
    async jobEvents(_id, opts) {
      asked.push(opts.lastEventId);
      const next = streams.shift();
      if (next === undefined) throw new Error('no more streams scripted');
      if (next instanceof Error) throw next;
      const events = Array.isArray(next) ? next : next.cutAfter;
      return (async function* () {
        yield* events;
        if (!Array.isArray(next)) throw new TypeError('terminated');
      })();
    },
  };
  return { client, asked, polls: () => polls };
}

const noSleep = async () => {};

describe('followJob', () => {
  it('reads the event stream to its end, reconnecting with the last id after a close or a cut, text once each', async () => {
    const { client, asked } = scripted(
      [[progress('0'), text('1', 0, 'one')], { cutAfter: [text('2', 1, ' two')] }, [text('3', 2, ' three'), end('3')]],
      [job('processing'), job('completed')],
    );
    const texts: string[] = [];
    const updates: string[] = [];
    const final = await followJob({
      client,
      id: 'job_x',
      intervalMs: 1,
      sleep: noSleep,
      onUpdate: (j) => updates.push(j.status),
      onText: (t) => texts.push(t),
    });
    expect(final.status).toBe('completed');
    expect(texts.join('')).toBe('one two three');
    expect(asked).toEqual([null, '1', '2']);
    expect(updates).toEqual(['processing', 'completed']);
  });

  it('polls when the server has no event stream (an older server answers 404) or none to spare (429)', async () => {
    for (const refusal of [
      new ApiError('NOT_FOUND', 'No route GET /v1/jobs/job_x/events.', 404),
      new ApiError('RATE_LIMITED', 'At most 8 event streams', 429),
    ]) {
      const { client, polls } = scripted([refusal], [job('processing'), job('processing'), job('completed')]);
      const final = await followJob({ client, id: 'job_x', intervalMs: 1, sleep: noSleep, onUpdate: () => {} });
      expect(final.status).toBe('completed');
      expect(polls()).toBe(3);
    }
  });

  it('gives up on an error answer that retrying cannot fix, and after too many cuts in a row', async () => {
    const denied = scripted([new ApiError('UNAUTHORIZED', 'no key', 401)], [job('processing')]);
    await expect(
      followJob({ client: denied.client, id: 'job_x', intervalMs: 1, sleep: noSleep, onUpdate: () => {} }),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const cuts = scripted(
      Array.from({ length: 5 }, () => ({ cutAfter: [] })),
      [job('processing')],
    );
    await expect(
      followJob({
        client: cuts.client,
        id: 'job_x',
        intervalMs: 1,
        sleep: noSleep,
        maxTransientErrors: 3,
        onUpdate: () => {},
      }),
    ).rejects.toThrow('terminated');
  });
});
