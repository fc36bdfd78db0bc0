import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '../json-schema.ts';
import { bearerMatches, digest } from '../bearer.ts';
import { redactConfig } from '../../config.ts';
import { HEALTH_DOWN_EXAMPLE, HEALTH_EXAMPLE, HEALTH_FULL_EXAMPLE } from '../examples.ts';
import type { HealthReport as Report } from '../health-report.ts';
import { HealthReport, HealthWithConfig } from '../health-schemas.ts';
import { errorResponses, jsonResponse } from '../response-schemas.ts';
import type { Services } from '../services.ts';

/** Anyone may ask; an API key or the metrics token shows the details too. */
const SHOWS_MORE_TO_A_KEY: Array<Record<string, string[]>> = [{}, { bearer: [] }, { metricsToken: [] }];

/** The report as a caller may see it: without details unless it may read internals. */
type Shown = HealthReport;

/**
 * Health for orchestrators and operators. Anyone gets the statuses; the components' details (DATA_DIR paths in
 * errors, binary versions, provider errors, load figures) and the effective configuration go only to a caller
 * with a valid API key or the metrics token. In open mode (no API keys) they go to everyone unless METRICS_TOKEN
 * is set: every route is open then anyway, and an operator who set a token has said who may see internals.
 */
export default async function healthRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { services } = opts;
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  const metricsToken = services.config.metricsToken === undefined ? null : digest(services.config.metricsToken);
  const openToAll = services.config.apiKeys.length === 0 && metricsToken === null;
  // The start-up log's view, computed once (the config does not change while the process runs), except the key
  // names: a tenant's key opens /health, and the names of the other tenants are not theirs to read.
  const config = { ...redactConfig(services.config), apiKeys: services.config.apiKeys.length };

  /** The auth plugin sets keyName on public routes too when a valid key is sent. */
  const mayReadInternals = (request: FastifyRequest): boolean =>
    openToAll ||
    request.keyName !== null ||
    (metricsToken !== null && bearerMatches(request.headers.authorization, metricsToken));

  const statusesOnly = (report: Report): Shown => ({
    status: report.status,
    components: Object.fromEntries(Object.entries(report.components).map(([name, c]) => [name, { status: c.status }])),
  });

  async function report(request: FastifyRequest): Promise<{ full: boolean; report: Shown }> {
    const full = mayReadInternals(request);
    const current = await services.health();
    return { full, report: full ? current : statusesOnly(current) };
  }

  // Liveness says only that the process answers: tying it to load or dependencies makes orchestrators restart busy pods.
  api.get(
    '/health/live',
    {
      schema: {
        summary: 'The process answers',
        operationId: 'getLiveness',
        tags: ['health'],
        security: [],
        response: {
          200: jsonResponse('The process answers.', Type.Object({ status: Type.Literal('ok') }), { status: 'ok' }),
          ...errorResponses('INTERNAL'),
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  api.get(
    '/health/ready',
    {
      schema: {
        summary: 'Whether the service can take jobs: 503 when a component is down',
        description:
          'Component details only with an API key or the metrics token (open mode without METRICS_TOKEN: to anyone).',
        operationId: 'getReadiness',
        tags: ['health'],
        security: SHOWS_MORE_TO_A_KEY,
        response: {
          200: jsonResponse('Ready: no component is down.', HealthReport, HEALTH_EXAMPLE),
          503: jsonResponse('Not ready: a component is down.', HealthReport, HEALTH_DOWN_EXAMPLE),
          ...errorResponses('INTERNAL'),
        },
      },
    },
    async (request, reply) => {
      const ready = (await report(request)).report;
      return reply.code(ready.status === 'down' ? 503 : 200).send(ready);
    },
  );

  api.get(
    '/health',
    {
      schema: {
        summary:
          'The readiness report (always 200); with an API key or the metrics token also the details and the configuration',
        description:
          'The configuration has its secrets replaced by whether they are set and its URLs without credentials or query values.',
        operationId: 'getHealth',
        tags: ['health'],
        security: SHOWS_MORE_TO_A_KEY,
        response: {
          200: jsonResponse(
            'The report; details and configuration only for a caller allowed to see internals.',
            HealthWithConfig,
            HEALTH_FULL_EXAMPLE,
          ),
          ...errorResponses('INTERNAL'),
        },
      },
    },
    async (request) => {
      const { full, report: current } = await report(request);
      return full ? { ...current, config } : current;
    },
  );
}
