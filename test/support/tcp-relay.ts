import net from 'node:net';
import { LOOPBACK } from './place.ts';

export interface TcpRelay {
  /** Where clients connect instead of the target (127.0.0.1). */
  port: number;
  /**
   * Keeps every byte either way from now on, in order, until release() (or, with `releaseAt`, as soon as that
   * many chunks are kept, without waiting for the test to look): a connection as slow as a test needs.
   */
  hold(options?: { releaseAt?: number }): void;
  /** Sends what was kept, in order, and relays as it comes again. */
  release(): void;
  /** Chunks kept so far while held (to wait until a command is on its way). */
  readonly heldChunks: number;
  /**
   * Drops every connection it relays and turns away new ones (accepted, then closed at once) until mend(): the
   * client's link is down, so it reconnects, without the server going away for anyone else.
   */
  cut(): void;
  /** Relays new connections again. */
  mend(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay on 127.0.0.1 to `targetPort` that a test can hold: the commands (and answers) of one client then
 * reach the server (and the client) exactly when the test says, which makes an interleaving that load only
 * sometimes makes (a command that arrives after another host's) happen every run.
 */
export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  let held = false;
  let cutOff = false;
  let releaseAt = Infinity;
  let kept: Array<() => void> = [];
  const release = () => {
    held = false;
    const send = kept;
    kept = [];
    for (const write of send) write();
  };
  const sockets = new Set<net.Socket>();
  const pipe = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (!held) {
        to.write(chunk);
        return;
      }
      kept.push(() => to.write(chunk));
      if (kept.length >= releaseAt) release();
    });
    from.on('close', () => to.destroy());
    from.on('error', () => to.destroy());
  };
  const server = net.createServer((client) => {
    if (cutOff) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, LOOPBACK.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK.host, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no TCP address');
  return {
    port: address.port,
    hold(options = {}) {
      held = true;
      releaseAt = options.releaseAt ?? Infinity;
    },
    release,
    get heldChunks() {
      return kept.length;
    },
    cut() {
      cutOff = true;
      kept = [];
      for (const s of sockets) s.destroy();
    },
    mend() {
      cutOff = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
