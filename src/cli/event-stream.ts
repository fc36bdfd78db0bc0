/** One Server-Sent Event as the WHATWG parsing rules dispatch it. */
export interface ServerSentEvent {
  /** The last id seen on the stream up to this event (ids carry over), or null before any. */
  id: string | null;
  /** `message` when the event named none. */
  event: string;
  data: string;
}

/** Longer than this, a line is not one our server sends: the stream is refused rather than buffered without end. */
const MAX_LINE_CHARS = 1024 * 1024;

/**
 * Parses an event stream (text/event-stream) as it arrives. Lines end in CRLF, LF or CR; `data` lines of one event
 * are joined with newlines; comment lines (`:`) go to `onComment` (the server's heartbeats); an event with no data
 * is not dispatched, as the spec says.
 */
export async function* readEventStream(
  body: AsyncIterable<Uint8Array>,
  onComment?: (text: string) => void,
): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let lastId: string | null = null;
  let event = '';
  let data: string[] = [];
  /** A CR ended the previous piece: a LF starting this one belongs to it. */
  let pendingCr = false;

  function* line(text: string): Generator<ServerSentEvent> {
    if (text === '') {
      if (data.length > 0) yield { id: lastId, event: event || 'message', data: data.join('\n') };
      event = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) {
      onComment?.(text.slice(1).trimStart());
      return;
    }
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  }

  for await (const piece of body) {
    buffer += decoder.decode(piece, { stream: true });
    if (pendingCr && buffer.startsWith('\n')) buffer = buffer.slice(1);
    pendingCr = false;
    let end: number;
    while ((end = buffer.search(/[\r\n]/)) !== -1) {
      const text = buffer.slice(0, end);
      if (buffer[end] === '\r' && end + 1 === buffer.length) pendingCr = true;
      const skip = buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1;
      buffer = buffer.slice(end + skip);
      yield* line(text);
    }
    if (buffer.length > MAX_LINE_CHARS) throw new Error(`event stream line longer than ${MAX_LINE_CHARS} characters`);
  }
}
