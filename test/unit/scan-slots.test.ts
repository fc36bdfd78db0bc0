import { describe, expect, it } from 'vitest';
import { createScanSlots } from '../../src/chunker/scan-slots.ts';

/** A task that runs until told, recording when it started. */
function held(name: string, started: string[]) {
  let finish!: (fail?: Error) => void;
  const task = () =>
    new Promise<string>((resolve, reject) => {
      started.push(name);
      finish = (fail) => (fail ? reject(fail) : resolve(name));
    });
  return { task, finish: (fail?: Error) => finish(fail) };
}

/** Two turns of the event loop: a slot freed in the first is taken in the second. */
const tick = async () => {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** Ends `task`, then checks which tasks have started once the slot it freed was handed on. */
async function finishThenExpect(
  task: { finish(): void } | undefined,
  started: readonly string[],
  expected: string[],
): Promise<void> {
  task?.finish();
  await tick();
  expect(started).toEqual(expected);
}

describe('createScanSlots', () => {
  it('runs at most `slots` tasks at once, and each next one as a slot frees', async () => {
    const slots = createScanSlots(2);
    const started: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((n) => held(n, started));
    const results = tasks.map((t) => slots.run(t.task, false));
    await tick();
    expect(started).toEqual(['a', 'b']);
    await finishThenExpect(tasks[1], started, ['a', 'b', 'c']);
    await finishThenExpect(tasks[0], started, ['a', 'b', 'c', 'd']);
    tasks[2]?.finish();
    tasks[3]?.finish();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('gives a free slot to the oldest task something waits for before any task ahead of need', async () => {
    const slots = createScanSlots(1);
    const started: string[] = [];
    const first = held('first', started);
    const later1 = held('ahead 1', started);
    const later2 = held('ahead 2', started);
    const urgent = held('urgent', started);
    const all = [
      slots.run(first.task, true),
      slots.run(later1.task, true),
      slots.run(later2.task, true),
      slots.run(urgent.task, false),
    ];
    await tick();
    expect(started).toEqual(['first']);
    for (const t of [first, urgent, later1, later2]) {
      t.finish();
      await tick();
    }
    expect(started).toEqual(['first', 'urgent', 'ahead 1', 'ahead 2']);
    await Promise.all(all);
  });

  it("passes a task's failure on and frees its slot", async () => {
    const slots = createScanSlots(1);
    const started: string[] = [];
    const failing = held('failing', started);
    const next = held('next', started);
    const failed = slots.run(failing.task, false);
    const after = slots.run(next.task, false);
    await tick();
    failing.finish(new Error('ffmpeg died'));
    await expect(failed).rejects.toThrow('ffmpeg died');
    await tick();
    expect(started).toEqual(['failing', 'next']);
    next.finish();
    expect(await after).toBe('next');
  });

  it('lets the reactions to a finished task cancel a waiting one before it starts', async () => {
    const slots = createScanSlots(1);
    const started: string[] = [];
    const near = held('near', started);
    const stop = new AbortController();
    // The wide scan is needed only if the near one found nothing (here it found something); the decision comes
    // a few promise reactions after the near scan's end, as in the planner.
    const nearDone = slots
      .run(near.task, false)
      .then((found) => Promise.all([found]))
      .then(async ([found]) => found)
      .then(() => stop.abort());
    const wide = slots.run(async () => {
      if (stop.signal.aborted) return 'skipped';
      started.push('wide');
      return 'scanned';
    }, false);
    near.finish();
    await nearDone;
    expect(await wide).toBe('skipped');
    expect(started).toEqual(['near']);
  });

  it('keeps one slot from the tasks ahead of need, for a task something comes to wait for', async () => {
    const slots = createScanSlots(2);
    const started: string[] = [];
    const ahead = ['ahead 1', 'ahead 2'].map((n) => held(n, started));
    const all = ahead.map((t) => slots.run(t.task, true));
    await tick();
    // Two slots, both free: still only one task ahead of need runs.
    expect(started).toEqual(['ahead 1']);
    const urgent = held('urgent', started);
    all.push(slots.run(urgent.task, false));
    await tick();
    expect(started).toEqual(['ahead 1', 'urgent']);
    await finishThenExpect(urgent, started, ['ahead 1', 'urgent']);
    await finishThenExpect(ahead[0], started, ['ahead 1', 'urgent', 'ahead 2']);
    ahead[1]?.finish();
    await Promise.all(all);
    // With one slot, it is theirs when nothing else waits.
    const one = createScanSlots(1);
    expect(await one.run(async () => 'ran', true)).toBe('ran');
  });
});

describe('createScanSlots with more urgent slots', () => {
  it('runs that many tasks something waits for at once, and a task ahead of need only within `slots`', async () => {
    const slots = createScanSlots(2, { urgent: 3 });
    const started: string[] = [];
    const urgent = ['u1', 'u2', 'u3', 'u4'].map((n) => held(n, started));
    const ahead = held('ahead', started);
    const all = [...urgent.map((t) => slots.run(t.task, false)), slots.run(ahead.task, true)];
    await tick();
    // Three side by side (the first targets of a job end together); the fourth waits.
    expect(started).toEqual(['u1', 'u2', 'u3']);
    await finishThenExpect(urgent[0], started, ['u1', 'u2', 'u3', 'u4']);
    // Two urgent tasks still run: the task ahead of need waits for a slot within the two.
    await finishThenExpect(urgent[1], started, ['u1', 'u2', 'u3', 'u4']);
    await finishThenExpect(urgent[2], started, ['u1', 'u2', 'u3', 'u4', 'ahead']);
    urgent[3]?.finish();
    ahead.finish();
    await Promise.all(all);
  });
});
