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

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('createScanSlots', () => {
  it('runs at most `slots` tasks at once, and each next one as a slot frees', async () => {
    const slots = createScanSlots(2);
    const started: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((n) => held(n, started));
    const results = tasks.map((t) => slots.run(t.task, false));
    await tick();
    expect(started).toEqual(['a', 'b']);
    tasks[1]?.finish();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    tasks[0]?.finish();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
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
});
