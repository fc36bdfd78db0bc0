import { describe, expect, it } from 'vitest';
import { readAhead } from '../../src/chunker/read-ahead.ts';

describe('readAhead', () => {
  it('reads the source ahead of its consumer, in order', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 3; i++) {
        produced += 1;
        yield i;
      }
    }
    const it = readAhead(source())[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: 0 });
    // The consumer took one; the source was drained behind it.
    await new Promise<void>((res) => setImmediate(res));
    expect(produced).toBe(3);
    expect(await it.next()).toEqual({ done: false, value: 1 });
    expect(await it.next()).toEqual({ done: false, value: 2 });
    expect((await it.next()).done).toBe(true);
  });

  it("hands over the source's error after the items before it", async () => {
    async function* source() {
      yield 1;
      throw new Error('scan failed');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const x of readAhead(source())) seen.push(x);
      })(),
    ).rejects.toThrow('scan failed');
    expect(seen).toEqual([1]);
  });

  it('stops reading the source when the consumer stops', async () => {
    let release!: () => void;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    let asked = 0;
    let finished = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) {
          asked += 1;
          if (i === 1) await gate;
          yield i;
        }
      } finally {
        finished = true;
      }
    }
    for await (const x of readAhead(source())) {
      expect(x).toBe(0);
      break;
    }
    release();
    await new Promise<void>((res) => setImmediate(res));
    await new Promise<void>((res) => setImmediate(res));
    expect(finished).toBe(true);
    expect(asked).toBe(2);
  });

  it('tells onStop once, as soon as the consumer stops, while the source is still busy on an item', async () => {
    let stops = 0;
    let release!: () => void;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    async function* source() {
      yield 0;
      await gate;
      yield 1;
    }
    const ahead = readAhead(source(), { onStop: () => (stops += 1) });
    for await (const x of ahead) {
      expect(x).toBe(0);
      expect(stops).toBe(0);
      break;
    }
    expect(stops).toBe(1);
    ahead.stop();
    release();
    expect(stops).toBe(1);
  });

  it('holds at most `max` items: the reading waits for the consumer to take one', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 10; i++) {
        produced += 1;
        yield i;
      }
    }
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) await new Promise<void>((res) => setImmediate(res));
    };
    const it = readAhead(source(), { max: 3 })[Symbol.asyncIterator]();
    await settle();
    expect(produced).toBe(3);
    expect(await it.next()).toEqual({ done: false, value: 0 });
    await settle();
    expect(produced).toBe(4);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('stops a bounded reading on stop(), for a consumer that never started', async () => {
    let finished = false;
    async function* source() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finished = true;
      }
    }
    const ahead = readAhead(source(), { max: 2 });
    await new Promise<void>((res) => setImmediate(res));
    expect(finished).toBe(false);
    ahead.stop();
    await new Promise<void>((res) => setImmediate(res));
    await new Promise<void>((res) => setImmediate(res));
    expect(finished).toBe(true);
  });
});
