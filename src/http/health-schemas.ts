import type { Static } from 'typebox';
import { Type } from './json-schema.ts';
import { COMPONENT_STATUSES } from '../resources/component-check.ts';
import { stringEnum } from './response-schemas.ts';

/*
 * The health and readiness answers (routes/health.ts): the status of each component, their details and the
 * effective configuration only for a caller allowed to see internals.
 */

const Component = Type.Object({
  status: stringEnum(COMPONENT_STATUSES),
  detail: Type.Optional(
    Type.String({ description: 'Shown only to a caller allowed to see internals (docs/operations.md: Health).' }),
  ),
});

export const HealthReport = Type.Object(
  {
    status: stringEnum(COMPONENT_STATUSES),
    components: Type.Record(Type.String(), Component),
  },
  { additionalProperties: true },
);

/** The readiness report as a caller sees it: details only when it may read internals. */
export type HealthReport = Static<typeof HealthReport>;

export const HealthWithConfig = Type.Object(
  {
    ...HealthReport.properties,
    config: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: true,
          description:
            'The effective configuration, secrets replaced by whether they are set and URLs without credentials; only to a caller allowed to see internals.',
        },
      ),
    ),
  },
  { additionalProperties: true },
);
