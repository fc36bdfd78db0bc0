/**
 * Pure: a response schema as the serializer is given it. fast-json-stringify serializes an `anyOf` by running an
 * ajv validator of each branch on the value, and compiles those validators on a route's first answer: for the
 * job resource, whose fields are mostly `T | null`, that took ~40 ms of the event loop on a fresh process's first
 * 202 and as much on its first GET, right when the job's first silence scans were to start. A nullable field
 * written as a type list (`{ type: ['string', 'null'] }`) is serialized by a `typeof` test instead, with the same
 * output for every value the schema allows. The served OpenAPI document keeps the schemas as they are written.
 */

type Json = unknown;

const isPlainObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keywords after which a branch is not a single-type schema a type list can stand for. */
const NOT_SINGLE_TYPE = ['$ref', 'anyOf', 'oneOf', 'allOf', 'not', 'if', 'const'];

const isNullSchema = (s: Json): boolean =>
  isPlainObject(s) && s.type === 'null' && Object.keys(s).every((k) => k === 'type' || k === 'description');

/** `{ anyOf: [T, null] }` (either order) as T with 'null' added to its type (and to its enum): null when not of that form. */
function asTypeList(schema: Record<string, Json>): Record<string, Json> | null {
  const branches = schema.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) return null;
  const nullAt = branches.findIndex(isNullSchema);
  const other: Json = branches[1 - nullAt];
  if (nullAt < 0 || !isPlainObject(other) || typeof other.type !== 'string' || other.type === 'null') return null;
  if (NOT_SINGLE_TYPE.some((k) => k in other)) return null;
  const { anyOf: _branches, ...siblings } = schema;
  return {
    ...other,
    ...siblings,
    type: [other.type, 'null'],
    ...(Array.isArray(other.enum) ? { enum: [...(other.enum as Json[]), null] } : {}),
  };
}

/** `schema` with every nullable single-type `anyOf` in it written as a type list; a new object, the input untouched. */
export function serializerSchema<T extends Json>(schema: T): T {
  return rewrite(schema) as T;
}

/** Keywords whose value is data, not schema. */
const DATA_KEYWORDS = new Set(['example', 'examples', 'default', 'enum', 'const', 'required']);
/** Keywords whose value maps names to schemas (a property may be called `default`). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs']);

function rewrite(node: Json, namesSchemas = false): Json {
  if (Array.isArray(node)) return node.map((n) => rewrite(n));
  if (!isPlainObject(node)) return node;
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(node)) {
    if (namesSchemas) out[key] = rewrite(value);
    else out[key] = DATA_KEYWORDS.has(key) ? value : rewrite(value, SCHEMA_MAPS.has(key));
  }
  return namesSchemas ? out : (asTypeList(out) ?? out);
}
