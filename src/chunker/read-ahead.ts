/**
 * An async iterable read ahead of its consumer: `source` is drained into a buffer as fast as it yields, so the
 * work behind it (scanning the audio for cut points, walking an mp3's frames) goes on while the consumer is busy
 * with earlier items or waiting for something else. `max`: items held at most (the reading pauses there until the
 * consumer takes one; default unbounded). Its error reaches the consumer after the items before it. Stopping the
 * consumer, or `stop()` (for a consumer that may never start iterating: a bounded reader would wait for it
 * forever, holding what the source holds open), stops the reading at the next item; `onStop` is told at once, for
 * a source busy on an item nobody will read (the next item can be seconds of work away).
 */
export function readAhead<T>(
  source: AsyncIterable<T>,
  { max = Infinity, onStop }: { max?: number; onStop?: () => void } = {},
): AsyncIterable<T> & { stop(): void } {
  const buffered: T[] = [];
  let ended = false;
  let failure: { error: unknown } | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;
  /** The reader, parked while the buffer is full; woken by a take or a stop. */
  let room: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const resume = (): void => {
    const r = room;
    room = null;
    r?.();
  };
  void (async () => {
    try {
      for await (const item of source) {
        buffered.push(item);
        notify();
        while (buffered.length >= max && !stopped) await new Promise<void>((res) => (room = res));
        if (stopped) break;
      }
    } catch (error) {
      failure = { error };
    } finally {
      ended = true;
      notify();
    }
  })();
  const stop = (): void => {
    if (!stopped) onStop?.();
    stopped = true;
    resume();
  };
  return {
    stop,
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          const item = buffered.shift();
          if (item !== undefined) {
            resume();
            yield item;
            continue;
          }
          if (failure) throw failure.error;
          if (ended) return;
          await new Promise<void>((res) => {
            wake = res;
          });
        }
      } finally {
        stop();
      }
    },
  };
}
