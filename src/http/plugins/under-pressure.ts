import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../../errors.ts';
import { pressuredResources, type PressureGauge } from '../../resources/pressure-gauge.ts';

export interface PressurePluginOptions {
  gauge: Pick<PressureGauge, 'refresh' | 'last'>;
  /** Mean event-loop delay (ms) above which uploads are refused; 0 turns the check off. */
  maxEventLoopDelayMs: number;
  /** How often memory, disk and the event loop are sampled. */
  sampleIntervalMs: number;
  retryAfterS: number;
}

/**
 * under-pressure measures the event loop in 10 ms ticks and reads a window without a tick as an infinite delay:
 * a window of at least 50 ticks keeps a busy moment from looking like a stalled loop.
 */
const MIN_EVENT_LOOP_WINDOW_MS = 500;

/** Only new work is refused: polling, transcript downloads and health keep answering under pressure. */
function refusesUnderPressure(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === '/v1/jobs';
}

/**
 * @fastify/under-pressure, fed by the system monitor (disk, RSS, heap, available memory) through its health check
 * and by its own event-loop delay measurement. Above normal, POST /v1/jobs answers 503 SERVER_BUSY with
 * Retry-After in the contract's error shape; every other route passes.
 */
async function pressurePlugin(app: FastifyInstance, opts: PressurePluginOptions): Promise<void> {
  await app.register(underPressure, {
    maxEventLoopDelay: opts.maxEventLoopDelayMs,
    sampleInterval: Math.max(opts.sampleIntervalMs, MIN_EVENT_LOOP_WINDOW_MS),
    healthCheck: async () => (await opts.gauge.refresh()).level === 'normal',
    healthCheckInterval: opts.sampleIntervalMs,
    // Async on purpose: under-pressure passes a rejection to the error handler and a resolution to the route.
    pressureHandler: async (request, _reply, type, value) => {
      if (!refusesUnderPressure(request)) return;
      const snapshot = opts.gauge.last();
      const details =
        type === 'eventLoopDelay'
          ? { resource: 'event_loop', delay_ms: Number.isFinite(value) ? Math.round(value ?? 0) : null }
          : {
              resource: snapshot ? (pressuredResources(snapshot)[0] ?? 'memory') : 'memory',
              level: snapshot?.level ?? 'elevated',
            };
      request.log.warn({ type, value, details }, 'upload refused under pressure');
      throw new AppError(
        'SERVER_BUSY',
        `The server is under ${details.resource.replace('_', ' ')} pressure; retry later.`,
        {
          retryAfterS: opts.retryAfterS,
          retryable: true,
          details,
        },
      );
    },
  });
}

export default fp(pressurePlugin, { name: 'chunkscribe-under-pressure', fastify: '5.x' });
