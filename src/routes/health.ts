import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { redactConfig } from '../config.ts';
import { errorResponses, HealthReport, HealthWithConfig } from '../http-schemas.ts';
import type { Services } from '../services.ts';

export default async function healthRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { services } = opts;
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  // The start-up log's view, computed once (the config does not change while the process runs), except the key
  // names: /health answers without a key, and the names of an operator's tenants are theirs to tell.
  const config = { ...redactConfig(services.config), apiKeys: services.config.apiKeys.length };

  // Liveness says only that the process answers: tying it to load or dependencies makes orchestrators restart busy pods.
  api.get(
    '/health/live',
    {
      schema: {
        summary: 'The process answers',
        tags: ['health'],
        response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errorResponses(500) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  api.get(
    '/health/ready',
    {
      schema: {
        summary: 'Whether the service can take jobs: 503 when a component is down',
        tags: ['health'],
        response: { 200: HealthReport, 503: HealthReport, ...errorResponses(500) },
      },
    },
    async (_request, reply) => {
      const report = await services.health();
      return reply.code(report.status === 'down' ? 503 : 200).send(report);
    },
  );

  api.get(
    '/health',
    {
      schema: {
        summary: 'The readiness report (always 200) and the effective configuration without its secrets',
        tags: ['health'],
        response: { 200: HealthWithConfig, ...errorResponses(500) },
      },
    },
    async () => ({ ...(await services.health()), config }),
  );
}
