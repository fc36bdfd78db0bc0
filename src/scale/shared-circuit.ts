import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';
import type { CircuitOpening, SharedCircuit } from '../transcribe/circuit-share.ts';

type Mirror = Parameters<SharedCircuit['follow']>[0];

/** What goes over the channel: one backend's open or close, said by one process (which ignores its own). */
interface Message {
  backend: string;
  from: string;
  open?: CircuitOpening;
  closedAt?: number;
}

export interface CircuitBusOptions {
  /** For the subscriber connection, which waits through a Redis restart (and then reads the state again). */
  redisUrl: string;
  /** The connection that publishes (fails fast: a breaker never waits on Redis). */
  client: Redis;
  prefix: string;
  /** This process, so that it does not mirror what it said itself. */
  processId: string;
  logger: Logger;
}

export interface CircuitBus {
  /** The shared state of one backend's breaker (every process must name its backends alike). */
  circuit(backend: string): SharedCircuit;
  close(): void;
}

function isCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}

function asOpening(value: unknown): CircuitOpening | null {
  if (typeof value !== 'object' || value === null) return null;
  const o = value as Record<string, unknown>;
  const { code, reason, openedAt, retryAt } = o;
  if (!isCode(code) || typeof reason !== 'string' || typeof openedAt !== 'number' || typeof retryAt !== 'number')
    return null;
  return { code, reason: reason.slice(0, 500), openedAt, retryAt };
}

/**
 * Circuit breakers shared by every process through Redis. An open is a key per backend that expires when its
 * cool-down ends (so a process that starts, or reconnects, mirrors what is open now) and a message on one channel
 * (so running processes mirror it at once); a close, after a probe that succeeded, deletes the key and says so.
 * When the cool-down ends one process claims the half-open probe for all (a key set if absent, for PROBE_HOLD_MS);
 * the others wait for its outcome, or for the claim to run out if that process died mid-probe.
 */
export function createCircuitBus(options: CircuitBusOptions): CircuitBus {
  const { client, prefix, processId, logger } = options;
  const log = logger.child({ component: 'shared-circuit' });
  const channel = `${prefix}:circuit`;
  const keyOf = (backend: string) => `${prefix}:circuit:${backend}`;
  const probeKeyOf = (backend: string) => `${prefix}:circuit-probe:${backend}`;
  const mirrors = new Map<string, Mirror>();
  const sub = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  sub.on('error', (err) => log.warn({ err }, 'redis error (circuit subscriber)'));

  const readOpen = async (backend: string, mirror: Mirror) => {
    try {
      const stored = await client.get(keyOf(backend));
      const opening = stored === null ? null : asOpening(JSON.parse(stored));
      if (opening) mirror.opened(opening);
    } catch (err) {
      // This connection may come back after the subscriber's: read once it does.
      log.warn({ err, backend }, 'could not read the shared circuit state; reading it at reconnect');
      client.once('ready', () => void readOpen(backend, mirror));
    }
  };
  // At every (re)connect: subscribe, then read the keys, since messages sent while this process was not listening
  // are lost and the keys are not. ioredis says 'ready' before its own re-subscribe: this SUBSCRIBE (a no-op
  // then) is answered after that one, so nothing said after the read can be missed.
  let subscribed = false;
  sub.on('ready', () => {
    sub.subscribe(channel).then(
      () => {
        subscribed = true;
        for (const [backend, mirror] of mirrors) void readOpen(backend, mirror);
      },
      (err: unknown) => log.warn({ err }, 'could not subscribe to circuit changes'),
    );
  });
  sub.on('message', (_channel: string, text: string) => {
    let message: Message;
    try {
      message = JSON.parse(text) as Message;
    } catch {
      return;
    }
    const mirror = mirrors.get(message.backend);
    if (!mirror || message.from === processId) return;
    const opening = asOpening(message.open);
    if (opening) mirror.opened(opening);
    else if (typeof message.closedAt === 'number') mirror.closed(message.closedAt);
  });

  const tell = async (backend: string, change: { open: CircuitOpening } | { closedAt: number }) => {
    const message: Message = { backend, from: processId, ...change };
    // Either ends the half-open period the probe claim was for: the next one is claimed afresh.
    const tx = client.multi().del(probeKeyOf(backend));
    if ('open' in change) {
      // Expires with the cool-down: after it, a process that starts has nothing to mirror, and probes for itself.
      tx.set(keyOf(backend), JSON.stringify(change.open), 'PX', Math.max(1, change.open.retryAt - Date.now()));
    } else {
      tx.del(keyOf(backend));
    }
    await tx.publish(channel, JSON.stringify(message)).exec();
  };

  return {
    circuit(backend) {
      return {
        publish(change) {
          tell(backend, change).catch((err: unknown) =>
            log.warn({ err, backend }, 'could not share the circuit state'),
          );
        },
        async claimProbe(holdMs) {
          try {
            return (await client.set(probeKeyOf(backend), processId, 'PX', holdMs, 'NX')) === 'OK';
          } catch (err) {
            // Redis away: probing here too is better than no host probing at all.
            log.warn({ err, backend }, 'could not claim the shared probe; probing from this process');
            return true;
          }
        },
        follow(mirror) {
          mirrors.set(backend, mirror);
          if (subscribed) void readOpen(backend, mirror);
        },
      };
    },
    close() {
      sub.disconnect();
    },
  };
}
