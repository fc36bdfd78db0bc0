import { describe, expect, it } from 'vitest';
import { readEventStream, type ServerSentEvent } from '../../src/cli/event-stream.ts';

async function parse(pieces: string[]): Promise<{ events: ServerSentEvent[]; comments: string[] }> {
  const comments: string[] = [];
  const bytes = pieces.map((p) => new TextEncoder().encode(p));
  async function* body() {
    yield* bytes;
  }
  const events: ServerSentEvent[] = [];
  for await (const e of readEventStream(body(), (c) => comments.push(c))) events.push(e);
  return { events, comments };
}

describe('readEventStream', () => {
  it('dispatches events at blank lines, joins data lines, carries the last id, and passes comments on', async () => {
    const { events, comments } = await parse([
      'id: 1\nevent: text\ndata: {"a":',
      '1}\n\n: heartbeat\n\n',
      'data: one\ndata: two\n\n',
      'id: 2\nevent: end\ndata: {}\n\n',
    ]);
    expect(events).toEqual([
      { id: '1', event: 'text', data: '{"a":1}' },
      { id: '1', event: 'message', data: 'one\ntwo' },
      { id: '2', event: 'end', data: '{}' },
    ]);
    expect(comments).toEqual(['heartbeat']);
  });

  it('takes CRLF and CR line ends, also split between two pieces, and a multi-byte character split too', async () => {
    const euro = new TextEncoder().encode('data: €\n\n');
    const comments: string[] = [];
    async function* body() {
      yield new TextEncoder().encode('event: a\r');
      yield new TextEncoder().encode('\ndata: x\r\r');
      yield euro.slice(0, 7);
      yield euro.slice(7);
    }
    const events: ServerSentEvent[] = [];
    for await (const e of readEventStream(body(), (c) => comments.push(c))) events.push(e);
    expect(events).toEqual([
      { id: null, event: 'a', data: 'x' },
      { id: null, event: 'message', data: '€' },
    ]);
  });

  it('does not dispatch an event without data, nor a half event at the end of the stream', async () => {
    const { events } = await parse(['event: nothing\n\nid: 3\n\ndata: cut off']);
    expect(events).toEqual([]);
  });
});
