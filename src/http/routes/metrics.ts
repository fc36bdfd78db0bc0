import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { Type } from '../json-schema.ts';
import { bearerMatches, digest } from '../bearer.ts';
import { AppError } from '../../errors.ts';
import type { AuthFailures } from '../auth-failures.ts';
import { METRICS_EXAMPLE } from '../examples.ts';
import { errorResponses } from '../response-schemas.ts';

/** Open without METRICS_TOKEN, the token with it: the document says both, whatever this server's configuration. */
const OPEN_OR_TOKEN: Array<Record<string, string[]>> = [{}, { metricsToken: [] }];

/**
 * Prometheus exposition. Open unless a token is configured: it shows counts and costs, no job content and no
 * secret, and scrapers usually sit on the same private network. With a token it takes `Authorization: Bearer`.
 */
export default async function metricsRoutes(
  app: FastifyInstance,
  opts: { registry: Registry; token: string | undefined; failures: AuthFailures },
): Promise<void> {
  const { registry, token, failures } = opts;
  const expected = token === undefined ? null : digest(token);

  const schema = {
    summary: 'Prometheus metrics (text exposition format); asks for `Bearer <METRICS_TOKEN>` when that is set',
    operationId: 'getMetrics',
    tags: ['health'],
    security: OPEN_OR_TOKEN,
    response: {
      200: {
        description: 'Prometheus text format 0.0.4',
        content: { 'text/plain': { schema: Type.String(), example: METRICS_EXAMPLE } },
      },
      ...errorResponses('UNAUTHORIZED', 'RATE_LIMITED', 'INTERNAL'),
    },
  };

  app.get('/metrics', { schema }, async (request, reply) => {
    if (expected && !bearerMatches(request.headers.authorization, expected)) {
      // A wrong token is a guess; no token at all (a scraper not yet configured) is not.
      if (request.headers.authorization !== undefined) failures.failed(request.ip, 'metrics');
      throw new AppError('UNAUTHORIZED', 'Send the metrics token as `Authorization: Bearer <METRICS_TOKEN>`.');
    }
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });
}
