/* global TextDecoder */
// Server-Sent Events read from a fetch body: EventSource cannot send the Authorization header the API needs.

const MAX_LINE_CHARS = 1024 * 1024;

/**
 * Yields { id, event, data } for each event of a text/event-stream body as it arrives (WHATWG parsing rules:
 * CRLF, LF or CR line ends, data lines joined with newlines, comments skipped, ids carried over).
 */
export async function* readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let lastId = null;
  let event = '';
  let data = [];
  let pendingCr = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      if (pendingCr && buffer.startsWith('\n')) buffer = buffer.slice(1);
      pendingCr = false;
      let end;
      while ((end = buffer.search(/[\r\n]/)) !== -1) {
        const line = buffer.slice(0, end);
        if (buffer[end] === '\r' && end + 1 === buffer.length) pendingCr = true;
        buffer = buffer.slice(end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield { id: lastId, event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'data') data.push(text);
        else if (field === 'event') event = text;
        else if (field === 'id' && !text.includes('\0')) lastId = text;
      }
      if (buffer.length > MAX_LINE_CHARS) throw new Error('The event stream sent a line too long to be ours.');
    }
  } finally {
    // Leaving early (the job view closed, another job opened) cancels the request.
    reader.cancel().catch(() => {});
  }
}
