import { describe, expect, it } from 'vitest';
import { ACCEPTED_JOB_EXAMPLE, JOB_EXAMPLE, JOB_LIST_EXAMPLE, TRANSCRIPT_EXAMPLE } from '../../src/http/examples.ts';
import { fastifyDefaultSerializers } from '../../src/http/lazy-serializers.ts';
import { JobList, JobResource, SHARED_SCHEMAS, Transcript } from '../../src/http/schemas.ts';
import { serializerSchema } from '../../src/http/serializer-schema.ts';

const NULL = { type: 'null' };

describe('serializerSchema', () => {
  it('writes a nullable single-type anyOf as a type list, keeping its keywords and siblings', () => {
    expect(serializerSchema({ anyOf: [{ type: 'string', format: 'date-time' }, NULL], description: 'd' })).toEqual({
      type: ['string', 'null'],
      format: 'date-time',
      description: 'd',
    });
    expect(serializerSchema({ anyOf: [NULL, { type: 'integer' }] })).toEqual({ type: ['integer', 'null'] });
    // An enum must take null too, or the schema would refuse what it allowed.
    expect(serializerSchema({ anyOf: [{ type: 'string', enum: ['a', 'b'] }, NULL] })).toEqual({
      type: ['string', 'null'],
      enum: ['a', 'b', null],
    });
  });

  it('rewrites nested schemas, and leaves data and other unions as they are', () => {
    const object = {
      type: 'object',
      properties: {
        // A property may be named like a keyword whose value is data.
        default: { anyOf: [{ type: 'number' }, NULL] },
        inner: { anyOf: [{ type: 'object', properties: { x: { anyOf: [{ type: 'string' }, NULL] } } }, NULL] },
        ref: { anyOf: [{ $ref: 'Other' }, NULL] },
        either: { anyOf: [{ type: 'string' }, { type: 'number' }] },
        literal: { anyOf: [{ type: 'string', const: 'x' }, NULL] },
      },
      example: { default: { anyOf: [] } },
    };
    const input = structuredClone(object);
    expect(serializerSchema(object)).toEqual({
      type: 'object',
      properties: {
        default: { type: ['number', 'null'] },
        inner: { type: ['object', 'null'], properties: { x: { type: ['string', 'null'] } } },
        ref: { anyOf: [{ $ref: 'Other' }, NULL] },
        either: { anyOf: [{ type: 'string' }, { type: 'number' }] },
        literal: { anyOf: [{ type: 'string', const: 'x' }, NULL] },
      },
      example: { default: { anyOf: [] } },
    });
    expect(object).toEqual(input);
  });

  it('leaves no anyOf in the job answers, whose serializers then validate nothing on the way out', () => {
    for (const schema of [JobResource, JobList, Transcript]) {
      expect(JSON.stringify(schema)).toContain('"anyOf"');
      expect(JSON.stringify(serializerSchema(schema))).not.toContain('"anyOf"');
    }
  });

  it('serializes the job answers as the schemas as written do', () => {
    const external = { ErrorBody: SHARED_SCHEMAS[0], JobResource: SHARED_SCHEMAS[1] };
    const compile = (schema: object, rewritten: boolean) =>
      fastifyDefaultSerializers()(rewritten ? serializerSchema(external) : external, {})({
        schema: rewritten ? serializerSchema(schema) : schema,
        method: 'GET',
        url: '/x',
        httpStatus: '200',
      });
    const running = {
      ...JOB_EXAMPLE,
      stage: 'transcribing',
      completed_at: null,
      key_name: null,
      error: null,
      webhook: null,
      detected_language: null,
      progress: {
        ...JOB_EXAMPLE.progress,
        eta_s: null,
        retrying: [{ chunk: 2, attempts: 1, next_try_at: null, reason: null }],
        waiting: { reason: 'disk_full', until: null },
      },
    };
    const failed = {
      ...JOB_EXAMPLE,
      status: 'failed',
      stage: null,
      error: { code: 'MEDIA_CORRUPT', message: 'm' },
      webhook: { status: 'failed', attempts: 3, last_status_code: 500, last_error: 'e', next_attempt_at: null },
      extra_field: 'passed through',
    };
    const cases: Array<[object, object[]]> = [
      [JobResource, [JOB_EXAMPLE, ACCEPTED_JOB_EXAMPLE, running, failed]],
      [JobList, [JOB_LIST_EXAMPLE, { items: [running, failed], next_cursor: null }]],
      [Transcript, [TRANSCRIPT_EXAMPLE, { ...TRANSCRIPT_EXAMPLE, language: null }]],
    ];
    for (const [schema, docs] of cases) {
      const written = compile(schema, false);
      const rewritten = compile(schema, true);
      for (const doc of docs) expect(rewritten(doc)).toBe(written(doc));
    }
  });
});
