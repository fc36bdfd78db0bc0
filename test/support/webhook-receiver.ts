import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedHook {
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  received: ReceivedHook[];
  /** Status codes answered in order; 200 once the list is used up. */
  answer(statuses: number[]): void;
  /** Requests from now on are recorded as they arrive but answered only at `release()`. */
  hold(): void;
  release(): void;
  /** Resolves when `count` requests have arrived. */
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

/** A callback receiver on 127.0.0.1 that records every request it gets. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedHook[] = [];
  let statuses: number[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let held: Array<() => void> | null = null;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(parts).toString('utf8') });
      const reply = () => void res.writeHead(statuses.shift() ?? 200, { 'content-type': 'text/plain' }).end('ok');
      if (held) held.push(reply);
      else reply();
      for (const w of waiters.filter((x) => received.length >= x.count)) w.resolve();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    answer(list) {
      statuses = [...list];
    },
    hold() {
      held ??= [];
    },
    release() {
      const replies = held ?? [];
      held = null;
      for (const reply of replies) reply();
    },
    waitFor(count) {
      if (received.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
