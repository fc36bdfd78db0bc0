import type { IncomingMessage } from 'node:http';

/** After an answer sent before the body was read, how much more of it is read and thrown away before the cut. */
const DISCARD_MAX_BYTES = 64 * 1024 * 1024;
const DISCARD_MAX_MS = 30_000;

/** Bodies already being thrown away: a refused upload's is, before its answer and again once it is sent. */
const discarding = new WeakSet<IncomingMessage>();

/**
 * The rest of a request body whose answer went (or goes) out before it was read: a refused upload, but also a
 * 401, a 404 or a 429 that never reads the body. Left alone, a half-read body holds the connection (a keep-alive
 * client's next request on it stalls until a timeout), and Node reads whatever follows an answer to its end, for
 * as long as the client sends it (up to REQUEST_TIMEOUT_MS), with or without a key; closing at once makes many
 * clients fail on EPIPE before they read the answer. So the rest is read and thrown away, the connection stays
 * usable once the body ends, and a client that sends more than DISCARD_MAX_BYTES, or for longer than
 * DISCARD_MAX_MS, is cut off.
 */
export function discardRest(raw: IncomingMessage): void {
  if (raw.complete || raw.destroyed || discarding.has(raw)) return;
  discarding.add(raw);
  raw.unpipe();
  let discarded = 0;
  const cut = () => raw.socket?.destroy();
  const timer = setTimeout(cut, DISCARD_MAX_MS).unref();
  raw.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_MAX_BYTES) cut();
  });
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
}
