import type { Static, TSchema } from 'typebox';
import { Type } from './json-schema.ts';
import { COMPONENT_STATUSES, HEALTH_REASONS } from '../resources/component-check.ts';
import { stringEnum } from './response-schemas.ts';

/*
 * The health and readiness answers (routes/health.ts), one schema per view (health-view.ts): `view` says which one
 * the caller got. The public sees the statuses; a tenant's key also the reason codes and the queue's figures; the
 * operator (the metrics token, or without it every client open mode serves) also every detail and, on /health,
 * the effective configuration.
 */

const Status = stringEnum(COMPONENT_STATUSES);
const Reason = stringEnum(HEALTH_REASONS, {
  description:
    'Why the component is not ok (job_dirs: why uploads are refused while it is); a stable code (docs/operations.md: Health).',
});
const count = (description: string) => Type.Integer({ minimum: 0, description });
const Load = Type.Object(
  {
    jobs_running: count('Jobs this process runs now.'),
    jobs_waiting: count('Jobs waiting for a run slot.'),
    requests_in_flight: count('Provider requests under way.'),
    requests_waiting: count('Provider requests waiting for a rate-limit token.'),
  },
  { description: 'The queue component only.' },
);

const PublicComponent = Type.Object({ status: Status });
const TenantComponent = Type.Object({ status: Status, reason: Type.Optional(Reason), load: Type.Optional(Load) });
const OperatorComponent = Type.Object({
  ...TenantComponent.properties,
  detail: Type.String({ description: "Free text that may name hosts, paths, versions and dependencies' errors." }),
});

const view = <V extends string, C extends TSchema>(name: V, component: C, description: string) =>
  Type.Object(
    { view: Type.Literal(name), status: Status, components: Type.Record(Type.String(), component) },
    { description },
  );

const PublicHealth = view('public', PublicComponent, 'Without a valid API key or the metrics token: statuses only.');
const TenantHealth = view(
  'tenant',
  TenantComponent,
  'To an API key (to every client open mode serves): statuses, reason codes and the queue figures.',
);
const OperatorReady = view(
  'operator',
  OperatorComponent,
  'To the metrics token (to every client open mode serves, without METRICS_TOKEN): every detail.',
);
const OperatorHealth = Type.Object(
  {
    ...OperatorReady.properties,
    config: Type.Object(
      {},
      {
        additionalProperties: true,
        description:
          'The effective configuration, secrets replaced by whether they are set and URLs without credentials.',
      },
    ),
  },
  {
    description:
      'To the metrics token (to every client open mode serves, without METRICS_TOKEN): every detail and the ' +
      'configuration.',
  },
);

/**
 * Each view's schema, by the view's name: what the routes serialize an answer with (the handler knows the view), so
 * each view drops any field it does not name. The unions below are what the served document describes.
 */
export const READY_VIEWS = { public: PublicHealth, tenant: TenantHealth, operator: OperatorReady };
export const HEALTH_VIEWS = { ...READY_VIEWS, operator: OperatorHealth };

/** /health/ready: the readiness report in the caller's view. */
export const HealthReport = Type.Union([PublicHealth, TenantHealth, OperatorReady]);
export type HealthReport = Static<typeof HealthReport>;

/** /health: the same, and the operator's view carries the configuration. */
export const HealthWithConfig = Type.Union([PublicHealth, TenantHealth, OperatorHealth]);
