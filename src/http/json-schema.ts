import type { Type as TypeBox, TLiteralValue, TSchema, TString } from 'typebox';

/**
 * The part of TypeBox's `Type` builder the HTTP schemas use, without loading TypeBox: importing it built 372
 * modules and kept ~7 MiB of an idle service's RSS, for schemas that are plain JSON Schema once built.
 * Each builder returns what TypeBox's own returns (the same enumerable keys in the same order, and its hidden
 * `~kind` / `~optional` / `~unsafe` markers, so anything reading a schema sees no difference) and is typed with
 * TypeBox's own declaration (types only, erased at build), so `Static<>` and Fastify's TypeBox type provider
 * still infer the handlers' types from the schemas. test/app/json-schema-builder.test.ts builds every HTTP schema
 * with both and compares them property by property.
 */

type Options = Record<string, unknown>;

/** TypeBox's hidden markers: present, not enumerable (not in JSON, not seen by ajv or the serializers). */
function hide<T extends object>(target: T, hidden: Options): T {
  for (const [key, value] of Object.entries(hidden))
    Object.defineProperty(target, key, { configurable: true, writable: true, enumerable: false, value });
  return target;
}

/** What a builder returns, typed as TypeBox's builder declares it (the value is the same shape). */
function build<T>(kind: string, enumerable: Options, options: Options | undefined): T {
  return hide({ ...enumerable, ...options }, { '~kind': kind }) as T;
}

function literalTypeName(value: TLiteralValue): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return typeof value;
  throw new TypeError(`not a literal value this builder writes: ${typeof value}`);
}

/** A copy of `schema` (hidden markers included) with more hidden markers, as TypeBox's Memory.Update makes it. */
function withHidden<T>(schema: TSchema, hidden: Options): T {
  const out: object = {};
  for (const key of Reflect.ownKeys(schema)) {
    if (typeof key === 'string' && key in hidden) continue;
    const descriptor = Object.getOwnPropertyDescriptor(schema, key);
    if (descriptor) Object.defineProperty(out, key, descriptor);
  }
  return hide(out, hidden) as T;
}

const isOptional = (schema: TSchema): boolean => Object.hasOwn(schema, '~optional');

const _Object_: typeof TypeBox.Object = (properties, options) => {
  const required = Object.keys(properties).filter((key) => !isOptional(properties[key] as TSchema));
  return build('Object', { type: 'object', ...(required.length > 0 ? { required } : {}), properties }, options);
};

const _Record_ = <Value extends TSchema>(
  key: TString,
  value: Value,
  options?: Options,
): ReturnType<typeof TypeBox.Record<TString, Value>> => {
  // TypeBox maps a plain string key to this pattern; the schemas use no other key.
  if (Object.keys(key).length !== 1) throw new TypeError('Record: only a plain Type.String() key is supported');
  return build('Record', { type: 'object', patternProperties: { '^.*$': value } }, options);
};

export const Type = {
  Object: _Object_,
  String: ((options) => build('String', { type: 'string' }, options)) as typeof TypeBox.String,
  Integer: ((options) => build('Integer', { type: 'integer' }, options)) as typeof TypeBox.Integer,
  Number: ((options) => build('Number', { type: 'number' }, options)) as typeof TypeBox.Number,
  Boolean: ((options) => build('Boolean', { type: 'boolean' }, options)) as typeof TypeBox.Boolean,
  Null: ((options) => build('Null', { type: 'null' }, options)) as typeof TypeBox.Null,
  Array: ((items, options) => build('Array', { type: 'array', items }, options)) as typeof TypeBox.Array,
  Union: ((anyOf, options) => build('Union', { anyOf }, options)) as typeof TypeBox.Union,
  Ref: ((ref, options) => build('Ref', { $ref: ref }, options)) as typeof TypeBox.Ref,
  Literal: ((value, options) =>
    build('Literal', { type: literalTypeName(value), const: value }, options)) as typeof TypeBox.Literal,
  Optional: ((schema) => withHidden(schema, { '~optional': true })) as typeof TypeBox.Optional,
  Unsafe: ((schema) => withHidden(schema, { '~unsafe': null })) as typeof TypeBox.Unsafe,
  Record: _Record_,
};
