import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  tooManyUploadBytes,
  tooManyUploads,
  type UploadRateCounter,
  type UploadSlot,
  type UploadSlotBounds,
  type UploadSlots,
} from '../resources/upload-limits.ts';
import { systemClock, type Clock } from '../transcribe/backoff.ts';
import { atDeadline, type DeadlineTimer } from '../transcribe/deadline-timer.ts';
import { redisUnavailable } from './shared-redis.ts';

/** A fixed window per key: the first upload starts it, every upload in it counts (the plugin's own store does the same). */
const COUNT = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if current == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}
`;

/**
 * One holder's slots: a sorted set of slot ids scored by when each expires, and a hash of the bytes each reserves.
 * Every call first drops the expired ones (a dead host's), then, by mode: `take` refuses past the count or the
 * bytes, `grow` past the bytes (granting `ahead` when that fits, else exactly `want`), `refresh` re-adds as it was.
 * Returns {1, granted bytes} or {0, 'uploads' | 'bytes'}. In one script, so two hosts cannot both take the last slot.
 */
const SLOTS = `
local now = tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #stale > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(stale))
end
local id, mode = ARGV[3], ARGV[8]
local want, ahead, maxBytes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
local grant = want
if mode ~= 'refresh' then
  if mode == 'take' and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[6]) then return {0, 'uploads'} end
  local others = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do others = others + tonumber(v) end
  others = others - tonumber(redis.call('HGET', KEYS[2], id) or '0')
  if others + ahead <= maxBytes then grant = ahead
  elseif others + want > maxBytes then return {0, 'bytes'} end
end
redis.call('ZADD', KEYS[1], ARGV[2], id)
redis.call('HSET', KEYS[2], id, grant)
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
return {1, grant}
`;

interface SlotCommands {
  chunkscribeUploadCount(key: string, windowMs: number): Promise<[number, number]>;
  chunkscribeUploadSlots(
    ids: string,
    bytes: string,
    ...args: Array<string | number>
  ): Promise<[1, number] | [0, 'uploads' | 'bytes']>;
}

function commands(client: Redis): SlotCommands {
  const c = client as Redis & Partial<SlotCommands>;
  if (!c.chunkscribeUploadCount) client.defineCommand('chunkscribeUploadCount', { numberOfKeys: 1, lua: COUNT });
  if (!c.chunkscribeUploadSlots) client.defineCommand('chunkscribeUploadSlots', { numberOfKeys: 2, lua: SLOTS });
  return client as Redis & SlotCommands;
}

/** The per-key upload count of @fastify/rate-limit, kept in Redis so every host counts into one window. */
export function createSharedUploadCounter(options: {
  client: Redis;
  prefix: string;
  retryAfterS: number;
  logger: Logger;
}): UploadRateCounter {
  const redis = commands(options.client);
  return {
    async incr(key, windowMs) {
      try {
        const [current, ttlMs] = await redis.chunkscribeUploadCount(`${options.prefix}:upload-rate:${key}`, windowMs);
        return { current, ttlMs };
      } catch (err) {
        throw redisUnavailable(options.retryAfterS, err, options.logger);
      }
    },
  };
}

export interface SharedUploadSlotsOptions extends UploadSlotBounds {
  client: Redis;
  prefix: string;
  logger: Logger;
  /** Scores are this clock's epoch ms: hosts' clocks must agree to well within `slotTtlMs - slotTtlMs / 3`. */
  clock?: Clock;
  /** A slot whose host stopped refreshing it (it died) counts for no longer than this. @default 30000 */
  slotTtlMs?: number;
  /** A body without Content-Length reserves this much more than it has sent, when that fits. @default 8 MiB */
  growStepBytes?: number;
}

/**
 * The upload slots per key shared by every host: the same bounds and refusals as this process's slots
 * (src/resources/upload-limits.ts), counted in Redis. A slot held by a host that dies is not held for ever: each
 * slot has an expiry that its host pushes back every third of `slotTtlMs` while the upload runs, and expired
 * slots are dropped by the next call for that key. Redis not answering refuses the upload (503 SERVER_BUSY).
 */
export function createSharedUploadSlots(options: SharedUploadSlotsOptions): UploadSlots {
  const { prefix, logger, clock = systemClock, slotTtlMs = 30_000, growStepBytes = 8 * 1024 * 1024 } = options;
  const redis = commands(options.client);
  const refreshMs = Math.max(1, Math.floor(slotTtlMs / 3));

  return {
    async take(holder, expectedBytes) {
      // The hash tag keeps a holder's two keys in one slot of a Redis Cluster (one script touches both).
      const keys = [`${prefix}:upload-slots:{${holder}}:ids`, `${prefix}:upload-slots:{${holder}}:bytes`] as const;
      const id = randomUUID();
      const log = logger.child({ slot: id });
      let reserved = expectedBytes ?? 0;
      let given = false;
      let refresh: DeadlineTimer | undefined;

      const call = async (mode: 'take' | 'grow' | 'refresh', want: number, ahead: number) => {
        const now = clock.now();
        return redis.chunkscribeUploadSlots(
          ...keys,
          now,
          now + slotTtlMs,
          id,
          want,
          ahead,
          options.maxPerHolder,
          options.maxBytesPerHolder,
          mode,
          slotTtlMs,
        );
      };
      const giveBack = () => options.client.multi().zrem(keys[0], id).hdel(keys[1], id).exec();
      const refused = (reason: 'uploads' | 'bytes') =>
        reason === 'uploads' ? tooManyUploads(options) : tooManyUploadBytes(options);
      // One owner of the refresh: each run arms the next; a late timer only shortens what is left of the expiry.
      const keepAlive = () => {
        refresh = atDeadline(clock, clock.now() + refreshMs, () => {
          if (given) return;
          call('refresh', reserved, reserved).then(
            () => undefined,
            (err: unknown) => log.warn({ err }, 'could not refresh an upload slot'),
          );
          keepAlive();
        });
      };

      let answer: Awaited<ReturnType<typeof call>>;
      try {
        answer = await call('take', reserved, reserved);
      } catch (err) {
        // The connection gives up on an answer after a second, also when Redis has it (a stalled event loop) or
        // runs the take later: what it took would count for slotTtlMs with nobody to give it back. Given back
        // here, on the same connection, so after the take; if that fails too, Redis is away and the expiry frees it.
        giveBack().catch(() => undefined);
        throw redisUnavailable(options.retryAfterS, err, log);
      }
      if (answer[0] === 0) throw refused(answer[1]);
      keepAlive();

      const slot: UploadSlot = {
        async grow(totalBytes) {
          if (given || totalBytes <= reserved) return;
          let grown: Awaited<ReturnType<typeof call>>;
          try {
            grown = await call('grow', totalBytes, totalBytes + growStepBytes);
          } catch (err) {
            throw redisUnavailable(options.retryAfterS, err, log);
          }
          if (grown[0] === 0) throw refused(grown[1]);
          reserved = Math.max(reserved, grown[1]);
        },
        async release() {
          if (given) return;
          given = true;
          refresh?.cancel();
          try {
            await giveBack();
          } catch (err) {
            log.warn({ err, expiresInMs: slotTtlMs }, 'could not give an upload slot back');
          }
        },
      };
      return slot;
    },
  };
}
