import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import { Type } from '../json-schema.ts';
import type { AuthFailures } from '../auth-failures.ts';
import { redactConfig } from '../../config.ts';
import { HEALTH_CONFIG_EXAMPLE, HEALTH_DOWN_EXAMPLE, HEALTH_EXAMPLES } from '../examples.ts';
import { healthView, healthViewerFor, type HealthView, type HealthViewer } from '../health-view.ts';
import { HEALTH_VIEWS, HealthReport, HealthWithConfig, READY_VIEWS } from '../health-schemas.ts';
import { branchSerializers } from '../lazy-serializers.ts';
import { errorResponses, jsonResponse } from '../response-schemas.ts';
import type { Services } from '../services.ts';

/** What fastify sets on a JSON answer it serializes itself. */
const JSON_TYPE = 'application/json; charset=utf-8';

/** Anyone may ask; an API key shows a tenant's view, the metrics token the operator's. */
const SHOWS_MORE_TO_A_KEY: Array<Record<string, string[]>> = [{}, { bearer: [] }, { metricsToken: [] }];

/** A JSON answer whose examples are the three views (health-view.ts). */
function viewsResponse(description: string, schema: TSchema, operator: unknown) {
  const examples = {
    public: { summary: 'No credential, or one that is not valid', value: HEALTH_EXAMPLES.public },
    tenant: { summary: 'An API key', value: HEALTH_EXAMPLES.tenant },
    operator: {
      summary: 'The metrics token (open mode without METRICS_TOKEN: every client it serves)',
      value: operator,
    },
  };
  return { description, content: { 'application/json': { schema, examples } } };
}

interface HealthRoutesOptions {
  services: Services;
  /** Where a bearer that is neither an API key nor the metrics token counts. */
  failures: AuthFailures;
}

/**
 * A credential that is neither an API key nor the metrics token: a guess at one, which the view would confirm, so
 * it counts as a failed check. Without keys and token there is nothing to guess (a client open mode does not
 * serve gets the public view whatever it sends).
 */
function isGuess(request: FastifyRequest, viewer: HealthViewer, guessable: boolean): boolean {
  return guessable && request.headers.authorization !== undefined && viewer !== 'operator' && request.keyName === null;
}

/**
 * Health for orchestrators, tenants and the operator. What a caller sees is decided by healthViewerFor from its
 * credential (health-view.ts), and in open mode from whether open mode serves it (the auth plugin): the statuses
 * to anyone; reason codes and the queue's figures to an API key (a tenant learns why its jobs wait, not where the
 * service runs); the components' details (paths, hosts, versions, dependencies' errors) and the effective
 * configuration only to the metrics token, or, in open mode without METRICS_TOKEN, to the clients open mode
 * serves (OPEN_MODE_CLIENTS).
 */
export default async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const { services, failures } = opts;
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  const viewerOf = healthViewerFor({ metricsToken: services.config.metricsToken });
  const guessable = services.config.apiKeys.length > 0 || services.config.metricsToken !== undefined;
  // The start-up log's view, computed once (the config does not change while the process runs), with the number
  // of API keys instead of their names.
  const config = { ...redactConfig(services.config), apiKeys: services.config.apiKeys.length };

  // Each answer is serialized with its view's schema (the union needs a validator per view to choose one).
  const readySerializer = branchSerializers('/health/ready', READY_VIEWS);
  const healthSerializer = branchSerializers('/health', HEALTH_VIEWS);

  /** The auth plugin sets keyName on public routes too when a valid key is sent. */
  const report = async (request: FastifyRequest): Promise<HealthView> => {
    const { keyName, openAccess } = request;
    const viewer = viewerOf({ authorization: request.headers.authorization, keyName, openAccess });
    if (isGuess(request, viewer, guessable)) failures.failed(request.ip, 'health');
    return healthView(await services.health(), viewer);
  };

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
          ...errorResponses('RATE_LIMITED', 'INTERNAL'),
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
          'Statuses to anyone; reason codes and queue figures to an API key; every detail to the metrics token ' +
          '(open mode without METRICS_TOKEN: to every client it serves, OPEN_MODE_CLIENTS). `view` says which the ' +
          'caller got.',
        operationId: 'getReadiness',
        tags: ['health'],
        security: SHOWS_MORE_TO_A_KEY,
        response: {
          200: viewsResponse('Ready: no component is down.', HealthReport, HEALTH_EXAMPLES.operator),
          503: jsonResponse('Not ready: a component is down.', HealthReport, HEALTH_DOWN_EXAMPLE),
          ...errorResponses('RATE_LIMITED', 'INTERNAL'),
        },
      },
    },
    async (request, reply) => {
      const ready = await report(request);
      return reply
        .code(ready.status === 'down' ? 503 : 200)
        .type(JSON_TYPE)
        .serializer(readySerializer(ready.view))
        .send(ready);
    },
  );

  api.get(
    '/health',
    {
      schema: {
        summary: 'The readiness report (always 200); to the operator also the details and the configuration',
        description:
          'As /health/ready, and the operator view carries the effective configuration: secrets replaced by ' +
          'whether they are set, URLs without credentials or query values.',
        operationId: 'getHealth',
        tags: ['health'],
        security: SHOWS_MORE_TO_A_KEY,
        response: {
          200: viewsResponse("The report in the caller's view.", HealthWithConfig, {
            ...HEALTH_EXAMPLES.operator,
            config: HEALTH_CONFIG_EXAMPLE,
          }),
          ...errorResponses('RATE_LIMITED', 'INTERNAL'),
        },
      },
    },
    async (request, reply) => {
      const current = await report(request);
      return reply
        .type(JSON_TYPE)
        .serializer(healthSerializer(current.view))
        .send(current.view === 'operator' ? { ...current, config } : current);
    },
  );
}
