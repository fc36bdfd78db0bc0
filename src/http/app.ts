import multipart from '@fastify/multipart';
import { fastifySSE } from '@fastify/sse';
import Fastify, { type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { discardRest } from './discard-body.ts';
import { clientErrorHandler, errorBody, errorReplier } from './error-replies.ts';
import { lazySerializers } from './lazy-serializers.ts';
import { RequestLog } from './request-log.ts';
import httpMetrics from './plugins/http-metrics.ts';
import { createAuthMetrics } from '../metrics/auth-metrics.ts';
import { authFailures, CREDENTIAL_CHECKS } from './auth-failures.ts';
import auth, { publicRoutes } from './plugins/auth.ts';
import openApi from './plugins/openapi.ts';
import underPressure from './plugins/under-pressure.ts';
import uploadRateLimit from './plugins/upload-rate-limit.ts';
import healthRoutes from './routes/health.ts';
import metricsRoutes from './routes/metrics.ts';
import jobEventRoutes from './routes/job-events.ts';
import jobRoutes from './routes/jobs.ts';
import uploadRoutes from './routes/upload.ts';
import { createJobUploads } from './routes/upload-job.ts';
import webRoutes from './routes/web.ts';
import openAIRoutes from './openai/index.ts';
import type { Services } from './services.ts';

export type App = Awaited<ReturnType<typeof buildApp>>;

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
  const serializers = lazySerializers();
  const app = Fastify({
    loggerInstance: logger,
    // Fastify's defaults are no timeouts at all: a slow client could hold a socket forever.
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    keepAliveTimeout: 5_000,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    logController: new RequestLog(),
    // Behind the proxies named in TRUST_PROXY, request.ip is the client's (X-Forwarded-For), for the per-address
    // limits and the request log; from any other peer the header is ignored. Never every peer.
    ...(config.trustProxy.length > 0 && { trustProxy: config.trustProxy }),
    // What Fastify and Node would otherwise answer in their own shapes: a URL that does not decode, a request
    // the HTTP parser refuses, a request that does not arrive in time.
    frameworkErrors: (err, request, reply) => answerError(err, request, reply),
    clientErrorHandler: clientErrorHandler(logger),
    schemaController: { compilersFactory: { buildSerializer: serializers.build } },
  });

  // An answer sent before the body was read (no key, no route, a limit): the rest is read only so far, not for
  // as long as the client sends it. Before the answer goes out: once it has, Node dumps the rest (reads it all,
  // however much and however slowly it comes, without a 'data' event for a count).
  app.addHook('onSend', (request, _reply, payload, done) => {
    discardRest(request.raw);
    done(null, payload);
  });
  await app.register(httpMetrics, { registry: services.metricsRegistry });
  await app.register(multipart, { throwFileSizeLimit: true });
  // Once, before every route: it wraps the handler of each route declared with an `sse` option.
  await app.register(fastifySSE, { heartbeatInterval: config.events.heartbeatMs });
  // Failed credentials per client address, for the key check, /health's views and /metrics' token alike.
  const authMetrics = createAuthMetrics(services.metricsRegistry, CREDENTIAL_CHECKS);
  const failures = authFailures({
    perMinute: config.authFailuresPerMinute,
    now: Date.now,
    onFailure: (check) => authMetrics.failed(check),
    // Once per address and window: a guessing client is worth the operator's attention, its every attempt is not.
    onLockout: (address, lockedMs, check) => {
      authMetrics.lockedOut(check);
      logger.warn(
        { address, perMinute: config.authFailuresPerMinute, lockedS: Math.ceil(lockedMs / 1000) },
        'too many failed credentials: address locked out',
      );
    },
  });
  await app.register(auth, { apiKeys: config.apiKeys, openModeClients: config.openModeClients, failures });
  await app.register(uploadRateLimit, {
    perMinute: config.uploadRateLimitPerMinute,
    counter: services.uploadLimits.rateCounter,
  });
  // Before every route, so the document lists them all.
  await app.register(openApi);
  await app.register(underPressure, {
    gauge: services.pressure,
    maxEventLoopDelayMs: config.pressure.eventLoopDelayMs,
    sampleIntervalMs: config.pressure.sampleIntervalMs,
    retryAfterS: config.pressure.retryAfterS,
  });

  const answerError = errorReplier({ events: services.events, isUpload, body: errorBody });
  app.setErrorHandler((err, request, reply) => answerError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send({ error: { code: 'NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}.` } });
  });

  // Every route needs an API key (when keys are set) unless it is registered through publicRoutes().
  await app.register(publicRoutes(healthRoutes), { services, failures });
  // One set of per-key upload slots for every route that takes an upload.
  // The answers a new job is about to get (its 202, then the polls), compiled while its media is checked, when the
  // event loop waits on ffprobe: on their first use they would take ~0.1 s just as the job's first cuts start.
  const uploads = createJobUploads(services, {
    whileChecking: () => serializers.warm(['POST /v1/jobs 202', 'GET /v1/jobs/:id 200']),
  });
  await app.register(uploadRoutes, { services, uploads });
  await app.register(jobRoutes, { services });
  await app.register(jobEventRoutes, { services });
  // OpenAI's audio API over the same jobs, in its own encapsulated plugin (OpenAI's error shape on its routes).
  await app.register(openAIRoutes, { services, uploads });
  await app.register(publicRoutes(metricsRoutes), {
    registry: services.metricsRegistry,
    token: config.metricsToken,
    failures,
  });
  await app.register(publicRoutes(webRoutes));

  app.addHook('onClose', async () => services.close());
  return app;
}
