import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  PROBE_HOLD_MS,
  type CircuitClosing,
  type CircuitOpening,
  type SharedCircuit,
} from '../transcribe/circuit-share.ts';
import { asMessage, asOpening, type Message, type SaidOpen } from './circuit-messages.ts';

type Mirror = Parameters<SharedCircuit['follow']>[0];

/*
 * Why a probe claim is per open period, and an ended period's claim key says 'ended' rather than being deleted:
 * two hosts ask at once, on their own connections, and one host's claim (SET NX) may reach Redis only after the
 * other's probe has already ended the period (a DEL of one shared claim key would let that late claim win a claim
 * for a half-open that has closed, and its host, not told yet, would send a second probe; after a new open, a probe
 * in the new cool-down). A claim names the period (CircuitOpening.id) it was asked in, so, whatever the order:
 * - before the period's open: impossible (a host learns the id from the open, written in the same script as below;
 *   the opener's own claim follows its open on the same connection);
 * - while it is open or half-open: the first claim wins, the others lose until the winner's hold runs out;
 * - after its probe's close, or after any later open: its key says 'ended' and the claim loses.
 * An open the shared state never heard of (said while Redis was away) has no key, and its host can claim it.
 * The 'ended' mark lasts PROBE_HOLD_MS, far past the fail-fast connection's command timeout, after which a host
 * that sent the claim has stopped waiting for its answer (src/scale/shared-redis.ts).
 * During a rolling deploy, an open said by a host of the previous version has no id: this version names its period
 * by its times (circuit-messages.ts) and records it as current (ADOPT), so the rules hold for what this version
 * writes. A previous-version host's close, and its open until a host of this version adopts it, mark no claim
 * 'ended' (it knows no period keys): a claim that reaches Redis after one of those can still win, as a claim for one
 * of this version's periods can after such a close. That gap ends with the rollout.
 *
 * An open: the period recorded as current (which a close for it may not have reached) ends, this one becomes it.
 */
const OPEN = `
local previous = redis.call('GET', KEYS[2])
if previous then redis.call('SET', ARGV[1] .. previous, 'ended', 'PX', ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[5])
return redis.call('PUBLISH', ARGV[6], ARGV[7])
`;

/**
 * A close: the period its probe was for ends; its open is forgotten, and so is a later open said before the
 * probe's success (the rule every host's breaker applies to the close it mirrors: an open is closed by a close at
 * or after it). A later open said after the success stands. Else a host that starts, or whose subscriber
 * reconnects, would read an open that every running host has closed (a fatal one: refusing jobs for its cool-down).
 * The latest close's time is kept (no expiry: one small key per backend): a host whose subscriber was away when
 * the message went applies it when it reconnects, instead of waiting out the 'ended' claim to probe for itself.
 */
const CLOSE = `
redis.call('SET', KEYS[3], 'ended', 'PX', ARGV[2])
local ok, stored = pcall(cjson.decode, redis.call('GET', KEYS[1]) or '')
local openedAt = ok and type(stored) == 'table' and tonumber(stored.openedAt) or nil
local closedAt = tonumber(ARGV[5])
if redis.call('GET', KEYS[2]) == ARGV[1] or (openedAt and openedAt <= closedAt) then
  redis.call('DEL', KEYS[1], KEYS[2])
end
local last = tonumber(redis.call('GET', KEYS[4]))
if not last or last < closedAt then redis.call('SET', KEYS[4], ARGV[5]) end
return redis.call('PUBLISH', ARGV[3], ARGV[4])
`;

/**
 * An open said by a host of the version before periods had ids (during a rolling deploy), as a host of this one
 * learns it: its period is recorded as current, as this version's OPEN would have done, so that the next open ends
 * it (a claim for it that reaches Redis after that open loses). Only while the open key still holds that open
 * (none since, of either version; the key holds the latest): else a later open's period is current already.
 */
const ADOPT = `
local ok, stored = pcall(cjson.decode, redis.call('GET', KEYS[1]) or '')
if not (ok and type(stored) == 'table' and stored.id == nil) then return 0 end
if tonumber(stored.openedAt) ~= tonumber(ARGV[4]) or tonumber(stored.retryAt) ~= tonumber(ARGV[5]) then return 0 end
local previous = redis.call('GET', KEYS[2])
if previous == ARGV[3] then return 0 end
if previous then redis.call('SET', ARGV[1] .. previous, 'ended', 'PX', ARGV[2]) end
redis.call('SET', KEYS[2], ARGV[3])
return 1
`;

interface CircuitCommands {
  chunkscribeCircuitOpen(open: string, current: string, ...args: Array<string | number>): Promise<number>;
  chunkscribeCircuitClose(
    open: string,
    current: string,
    claim: string,
    closed: string,
    ...args: Array<string | number>
  ): Promise<number>;
  chunkscribeCircuitAdopt(open: string, current: string, ...args: Array<string | number>): Promise<number>;
}

/** One deployment's circuit keys in Redis, and the writes that say a change and claim a probe. */
function circuitState(client: Redis, prefix: string, processId: string) {
  const c = client as Redis & Partial<CircuitCommands>;
  if (!c.chunkscribeCircuitOpen) client.defineCommand('chunkscribeCircuitOpen', { numberOfKeys: 2, lua: OPEN });
  if (!c.chunkscribeCircuitClose) client.defineCommand('chunkscribeCircuitClose', { numberOfKeys: 4, lua: CLOSE });
  if (!c.chunkscribeCircuitAdopt) client.defineCommand('chunkscribeCircuitAdopt', { numberOfKeys: 2, lua: ADOPT });
  const redis = client as Redis & CircuitCommands;
  const channel = `${prefix}:circuit`;
  const keysOf = (backend: string) => ({
    open: `${prefix}:circuit:${backend}`,
    /** The open period recorded as current, by id (no expiry: one small key per backend). */
    current: `${prefix}:circuit-period:${backend}`,
    /** Each open period's probe claim key is this followed by the period's id (the OPEN script builds them too). */
    claims: `${prefix}:circuit-probe:${backend}:`,
    /** The time (epoch ms) of the latest close. */
    closed: `${prefix}:circuit-closed:${backend}`,
  });
  const claimKeyOf = (backend: string, id: string) => keysOf(backend).claims + id;
  return {
    channel,
    /** What a process that was not listening may have missed: the open stored now, the latest close's time. */
    read: (backend: string) => {
      const { open, closed } = keysOf(backend);
      return client.mget(open, closed);
    },
    async say(backend: string, change: { open: CircuitOpening } | CircuitClosing): Promise<void> {
      const { open, current, claims, closed } = keysOf(backend);
      if ('open' in change) {
        const message = JSON.stringify({ backend, from: processId, open: change.open } satisfies Message);
        // Expires with the cool-down: after it, a process that starts has nothing to mirror, and probes for itself.
        const ttlMs = Math.max(1, change.open.retryAt - Date.now());
        const { id } = change.open;
        const opening = JSON.stringify(change.open);
        await redis.chunkscribeCircuitOpen(open, current, claims, PROBE_HOLD_MS, opening, ttlMs, id, channel, message);
      } else {
        const { id, closedAt } = change;
        const message = JSON.stringify({ backend, from: processId, closedAt } satisfies Message);
        const claim = claimKeyOf(backend, id);
        const args = [id, PROBE_HOLD_MS, channel, message, closedAt];
        await redis.chunkscribeCircuitClose(open, current, claim, closed, ...args);
      }
    },
    /** Records a previous version's open (`legacyPeriodId`) as the current period, unless a later open is stored. */
    async adopt(backend: string, opening: CircuitOpening): Promise<void> {
      const { open, current, claims } = keysOf(backend);
      const { id, openedAt, retryAt } = opening;
      await redis.chunkscribeCircuitAdopt(open, current, claims, PROBE_HOLD_MS, id, openedAt, retryAt);
    },
    async claim(backend: string, id: string, holdMs: number): Promise<boolean> {
      return (await client.set(claimKeyOf(backend, id), processId, 'PX', holdMs, 'NX')) === 'OK';
    },
    /** Who holds the probe of period `id` (a process id, 'ended', or null: nobody). */
    holder: (backend: string, id: string) => client.get(claimKeyOf(backend, id)),
  };
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

/**
 * Circuit breakers shared by every process through Redis. An open is a key per backend that expires when its
 * cool-down ends (so a process that starts, or reconnects, mirrors what is open now) and a message on one channel
 * (so running processes mirror it at once); a close, after a probe that succeeded, deletes the key and says so.
 * When the cool-down ends one process claims the half-open probe for all (a key of that open period set if absent,
 * for PROBE_HOLD_MS); the others wait for its outcome, or for the claim to run out if that process died mid-probe.
 */
export function createCircuitBus(options: CircuitBusOptions): CircuitBus {
  const { client, prefix, processId, logger } = options;
  const state = circuitState(client, prefix, processId);
  const { channel } = state;
  const log = logger.child({ component: 'shared-circuit' });
  const mirrors = new Map<string, Mirror>();
  const sub = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  sub.on('error', (err) => log.warn({ err }, 'redis error (circuit subscriber)'));

  const mirrorOpen = (backend: string, mirror: Mirror, { opening, legacy }: SaidOpen) => {
    mirror.opened(opening);
    if (legacy) {
      state.adopt(backend, opening).catch((err: unknown) => log.warn({ err, backend }, 'could not adopt an open'));
    }
  };
  /**
   * Applies what was said while this process was not listening, by the rules it mirrors messages with: the latest
   * close (it closes an open at or before it), then the open stored now (a close deletes every open said before
   * it, so one still stored came after: the order the two messages would have come in).
   */
  const readState = async (backend: string, mirror: Mirror) => {
    try {
      const [stored, closed] = await state.read(backend);
      const closedAt = Number(closed ?? NaN);
      if (Number.isFinite(closedAt)) mirror.closed(closedAt);
      const said = stored == null ? null : asOpening(JSON.parse(stored));
      if (said) mirrorOpen(backend, mirror, said);
    } catch (err) {
      // This connection may come back after the subscriber's: read once it does.
      log.warn({ err, backend }, 'could not read the shared circuit state; reading it at reconnect');
      client.once('ready', () => void readState(backend, mirror));
    }
  };
  // At every (re)connect: subscribe, then read the keys, since messages sent while this process was not listening
  // are lost and the keys are not. ioredis emits 'ready' on the next tick, after it has sent its own re-subscribe
  // (Redis.js setStatus, event_handler.js readyHandler): this SUBSCRIBE (a no-op then) is answered after that
  // one, so nothing said after the read can be missed.
  let subscribed = false;
  sub.on('ready', () => {
    sub.subscribe(channel).then(
      () => {
        subscribed = true;
        for (const [backend, mirror] of mirrors) void readState(backend, mirror);
      },
      (err: unknown) => log.warn({ err }, 'could not subscribe to circuit changes'),
    );
  });
  sub.on('message', (_channel: string, text: string) => {
    const message = asMessage(text);
    const mirror = message && mirrors.get(message.backend);
    if (!message || !mirror || message.from === processId) return;
    // The open is checked as the stored one is; what it carries is not trusted before.
    const said = asOpening(message.open);
    if (said) mirrorOpen(message.backend, mirror, said);
    else if (message.closedAt !== undefined) mirror.closed(message.closedAt);
  });

  return {
    circuit(backend) {
      return {
        publish(change) {
          state
            .say(backend, change)
            .catch((err: unknown) => log.warn({ err, backend }, 'could not share the circuit state'));
        },
        async claimProbe(id, holdMs) {
          try {
            return await state.claim(backend, id, holdMs);
          } catch (err) {
            // The connection gives up on an answer after a second, also when Redis answered in time but this
            // process did not run to read it (a stalled event loop): the claim may have been made, by this host or
            // another. Redis says which: a read sent on the same connection is answered after the claim was made.
            const holder = await state.holder(backend, id).catch(() => null);
            if (holder !== null) return holder === processId;
            // Redis away: probing here too is better than no host probing at all.
            log.warn({ err, backend }, 'could not claim the shared probe; probing from this process');
            return true;
          }
        },
        follow(mirror) {
          mirrors.set(backend, mirror);
          if (subscribed) void readState(backend, mirror);
        },
      };
    },
    close() {
      sub.disconnect();
    },
  };
}
