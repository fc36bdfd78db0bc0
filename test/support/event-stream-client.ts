import { readEventStream, type ServerSentEvent } from '../../src/cli/event-stream.ts';

/** A job's event stream opened with fetch, read event by event; `close()` is the client going away. */
export interface EventStreamClient {
  status: number;
  headers: Headers;
  /** The next event, or null once the server has closed the stream. */
  next(): Promise<ServerSentEvent | null>;
  /** Reads until `stop(event)` is true (that event included) or the stream ends; returns what was read. */
  readUntil(stop: (event: ServerSentEvent) => boolean): Promise<ServerSentEvent[]>;
  /** Comment lines seen so far (the server's heartbeats). */
  comments: string[];
  close(): void;
}

export async function openEvents(
  url: string,
  jobId: string,
  headers: Record<string, string> = {},
): Promise<EventStreamClient> {
  const abort = new AbortController();
  const res = await fetch(`${url}/v1/jobs/${jobId}/events`, { headers, signal: abort.signal });
  const comments: string[] = [];
  const events = res.ok && res.body ? readEventStream(res.body, (c) => comments.push(c)) : null;
  const next = async (): Promise<ServerSentEvent | null> => {
    if (!events) return null;
    const r = await events.next();
    return r.done ? null : r.value;
  };
  return {
    status: res.status,
    headers: res.headers,
    comments,
    next,
    async readUntil(stop) {
      const out: ServerSentEvent[] = [];
      for (let e = await next(); e !== null; e = await next()) {
        out.push(e);
        if (stop(e)) break;
      }
      return out;
    },
    close: () => abort.abort(),
  };
}

export interface TextEventData {
  chunk: number;
  start: number;
  end: number;
  text: string;
}

export const textsOf = (events: ServerSentEvent[]): TextEventData[] =>
  events.filter((e) => e.event === 'text').map((e) => JSON.parse(e.data) as TextEventData);
