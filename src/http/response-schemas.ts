import type { TSchema } from 'typebox';
import { Type } from './json-schema.ts';
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { ERROR_EXAMPLES } from './examples.ts';

/**
 * What every route's schemas are made with: the builders the schema modules share, the error body, and a route's
 * response entries (a JSON body, its errors grouped by status), read alike by Fastify and the OpenAPI document.
 */
/** A string limited to `values`, with the literal union as its static type. */
export function stringEnum<const T extends readonly string[]>(
  values: T,
  options: { description?: string; default?: T[number] } = {},
) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: stringEnum(ERROR_CODES, { description: 'Stable UPPER_SNAKE identifier (README: error codes).' }),
      message: Type.String({ description: 'What to do about it.' }),
      details: Type.Optional(Type.Object({}, { additionalProperties: true })),
    }),
  },
  { $id: 'ErrorBody', title: 'Error' },
);

const RETRY_AFTER = Type.Integer({
  minimum: 1,
  description: 'Seconds to wait before retrying (sent with the codes that are worth retrying).',
});

/**
 * A response in the form both read: Fastify serializes by the schema of the reply's media type, the document
 * shows the description, the headers and the example.
 */
export function jsonResponse<T extends TSchema>(
  description: string,
  schema: T,
  example: unknown,
  headers?: Record<string, TSchema>,
) {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema, example } } };
}

/**
 * The error responses of a route: one entry per status, naming the codes the route can answer with it and
 * showing an example body for each. A route lists exactly the codes it (or a hook in front of it) can throw.
 */
export function errorResponses(...codes: ErrorCode[]) {
  return responsesByStatus(codes, errorResponse);
}

/** `codes` grouped by their HTTP status (in the order given), one response made of each group, keyed by status. */
export function responsesByStatus<R>(
  codes: ErrorCode[],
  respond: (status: number, group: ErrorCode[]) => R,
): Record<string, R> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERROR_STATUS[code], [...(byStatus.get(ERROR_STATUS[code]) ?? []), code]);
  const out: Record<string, R> = {};
  for (const [status, group] of byStatus) out[String(status)] = respond(status, group);
  return out;
}

function errorResponse(status: number, codes: ErrorCode[]) {
  const examples = Object.fromEntries(
    codes.map((code) => [code, { summary: code, value: { error: { code, ...ERROR_EXAMPLES[code] } } }]),
  );
  return {
    description: `Error: ${codes.join(', ')}`,
    ...(status === 429 || status === 503 ? { headers: { 'retry-after': RETRY_AFTER } } : {}),
    content: { 'application/json': { schema: Type.Ref('ErrorBody'), examples } },
  };
}
