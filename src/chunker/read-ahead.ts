/**
 * An async iterable read ahead of its consumer: `source` is drained into a buffer as fast as it yields, so the
 * work behind it (scanning the audio for cut points) goes on while the consumer is busy with earlier items. Its
 * error reaches the consumer after the items before it. Stopping the consumer stops the reading at the next item.
 */
export function readAhead<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  const buffered: T[] = [];
  let ended = false;
  let failure: { error: unknown } | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  void (async () => {
    try {
      for await (const item of source) {
        buffered.push(item);
        notify();
        if (stopped) break;
      }
    } catch (error) {
      failure = { error };
    } finally {
      ended = true;
      notify();
    }
  })();
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          const item = buffered.shift();
          if (item !== undefined) {
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
        stopped = true;
      }
    },
  };
}
