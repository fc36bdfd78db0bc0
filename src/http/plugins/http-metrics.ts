import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Histogram, type Registry } from 'prom-client';

export interface HttpMetricsOptions {
  /** The service's own registry (GET /metrics serves it). */
  registry: Registry;
}

/** What a request that matched no route is counted as. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Every answered request timed by method, route and status. `route` is the matched route's pattern
 * (`/v1/jobs/:id`), never the URL: a label per URL would let any client grow the registry without bound. The
 * method is bounded too: Node's HTTP parser refuses methods it does not know before Fastify sees the request.
 */
async function httpMetricsPlugin(app: FastifyInstance, opts: HttpMetricsOptions): Promise<void> {
  const duration = new Histogram({
    name: 'chunkscribe_http_request_duration_seconds',
    help: 'HTTP requests from arrival to the end of the answer, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'],
    // Polls answer in milliseconds; an upload streams its whole file inside one request.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [opts.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      status_code: String(reply.statusCode),
    };
    duration.observe(labels, reply.elapsedTime / 1000);
  });
}

export default fp(httpMetricsPlugin, { name: 'chunkscribe-http-metrics', fastify: '5.x' });
