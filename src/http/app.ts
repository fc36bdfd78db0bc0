import multipart from '@fastify/multipart';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.ts';
import { clientErrorHandler, errorBody, toAppError } from './error-replies.ts';
import { lazySerializers } from './lazy-serializers.ts';
import { RequestLog } from './request-log.ts';
import httpMetrics from './plugins/http-metrics.ts';
import auth, { publicRoutes } from './plugins/auth.ts';
import openApi from './plugins/openapi.ts';
import underPressure from './plugins/under-pressure.ts';
import uploadRateLimit from './plugins/upload-rate-limit.ts';
import healthRoutes from './routes/health.ts';
import metricsRoutes from './routes/metrics.ts';
import jobRoutes from './routes/jobs.ts';
import uploadRoutes from './routes/upload.ts';
import webRoutes from './routes/web.ts';
import type { Services } from './services.ts';

export type App = Awaited<ReturnType<typeof buildApp>>;

/**
 * Refusals that are the service protecting itself as designed (pressure, a full job pool, a disk too small for
 * the job), not faults: under load there is one per refused request, so they are warnings, not errors.
 */
const EXPECTED_REFUSALS: ReadonlySet<ErrorCode> = new Set(['SERVER_BUSY', 'INSUFFICIENT_STORAGE']);

function isUpload(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === '/v1/jobs';
}

export interface AppOptions {
  services: Services;
  logger: Logger;
}

/**
 * The HTTP front door: plugins, then routes, then the one error handler. The pipeline behind `services` runs
 * without it. Closing the app closes the services (drain jobs, close the store).
 */
export async function buildApp({ services, logger }: AppOptions) {
  const { config } = services;
  const app = Fastify({
    loggerInstance: logger,
    // Fastify's defaults are no timeouts at all: a slow client could hold a socket forever.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: 5_000,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    logController: new RequestLog(),
    // What Fastify and Node would otherwise answer in their own shapes: a URL that does not decode, a request
    // the HTTP parser refuses, a request that does not arrive in time.
    frameworkErrors: (err, request, reply) => answerError(err, request, reply),
    clientErrorHandler: clientErrorHandler(logger),
    schemaController: { compilersFactory: { buildSerializer: lazySerializers() } },
  });

  await app.register(httpMetrics, { registry: services.metricsRegistry });
  await app.register(multipart, { throwFileSizeLimit: true });
  await app.register(auth, { apiKeys: config.apiKeys });
  await app.register(uploadRateLimit, { perMinute: config.uploadRateLimitPerMinute });
  // Before every route, so the document lists them all.
  await app.register(openApi);
  await app.register(underPressure, {
    gauge: services.pressure,
    maxEventLoopDelayMs: config.pressure.eventLoopDelayMs,
    sampleIntervalMs: config.pressure.sampleIntervalMs,
    retryAfterS: config.pressure.retryAfterS,
  });

  app.setErrorHandler((err, request, reply) => answerError(err, request, reply));
  function answerError(err: unknown, request: FastifyRequest, reply: FastifyReply) {
    const appError = toAppError(err);
    if (isUpload(request)) services.events.uploadRefused(appError.code);
    // `reason`, not `msg`: pino writes the message as `msg`, and a second `msg` key makes the line ambiguous JSON.
    if (EXPECTED_REFUSALS.has(appError.code))
      request.log.warn({ code: appError.code, reason: appError.message }, 'request refused');
    else if (appError.statusCode >= 500) request.log.error({ err, code: appError.code }, 'request failed');
    else request.log.info({ code: appError.code, reason: appError.message }, 'request rejected');
    if (appError.retryAfterS !== undefined) reply.header('retry-after', String(Math.ceil(appError.retryAfterS)));
    return reply.code(appError.statusCode).send(errorBody(appError));
  }
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}.` } });
  });

  // Every route needs an API key (when keys are set) unless it is registered through publicRoutes().
  await app.register(publicRoutes(healthRoutes), { services });
  await app.register(uploadRoutes, { services });
  await app.register(jobRoutes, { services });
  await app.register(publicRoutes(metricsRoutes), { registry: services.metricsRegistry, token: config.metricsToken });
  await app.register(publicRoutes(webRoutes));

  app.addHook('onClose', async () => services.close());
  return app;
}
