import type { z as Zod } from 'zod';

/**
 * The part of zod's `z` that src/config.ts reads the environment with, without loading zod: importing it kept
 * ~7 MiB of an idle service's RSS (all its locales, its JSON Schema tools) for one parse at start. Each builder
 * checks, coerces, defaults and words its issues as zod 4 does, and is typed with zod's own declaration (types
 * only), so `z.input`/`z.output` of the env schema still hold. test/unit/env-schema.test.ts parses a wide set of
 * environments with this and with zod itself and compares every result and message.
 */

interface Outcome {
  value: unknown;
  /** Messages, each with the path below this schema (the object adds its key). */
  issues: Array<{ path: string[]; message: string }>;
}

const ok = (value: unknown): Outcome => ({ value, issues: [] });
const fail = (message: string): Outcome => ({ value: undefined, issues: [{ path: [], message }] });

/** A check on a value of the right type: its message when it fails, and whether later checks still run. */
interface Check<T> {
  test: (value: T) => string | null;
  abort?: boolean;
}

abstract class Schema {
  abstract run(input: unknown): Outcome;

  optional(): Schema {
    return new Wrapped((input) => (input === undefined ? ok(undefined) : this.run(input)));
  }

  default(value: unknown): Schema {
    return new Wrapped((input) => (input === undefined ? ok(value) : this.run(input)));
  }

  transform(fn: (value: never) => unknown): Schema {
    return new Wrapped((input) => {
      const out = this.run(input);
      return out.issues.length > 0 ? out : ok(fn(out.value as never));
    });
  }

  pipe(next: Schema): Schema {
    return new Wrapped((input) => {
      const out = this.run(input);
      return out.issues.length > 0 ? out : next.run(out.value);
    });
  }

  safeParse(input: unknown) {
    const out = this.run(input);
    if (out.issues.length === 0) return { success: true as const, data: out.value };
    return { success: false as const, error: { issues: out.issues } };
  }
}

class Wrapped extends Schema {
  readonly run: (input: unknown) => Outcome;

  constructor(run: (input: unknown) => Outcome) {
    super();
    this.run = run;
  }
}

/** A type check, then its checks in order (an aborting check that fails ends the list). */
abstract class Checked<T> extends Schema {
  protected checks: Array<Check<T>> = [];

  protected abstract typed(input: unknown): { value: T } | { message: string };

  run(input: unknown): Outcome {
    const typed = this.typed(input);
    if ('message' in typed) return fail(typed.message);
    const issues: Outcome['issues'] = [];
    for (const check of this.checks) {
      const message = check.test(typed.value);
      if (message === null) continue;
      issues.push({ path: [], message });
      if (check.abort) break;
    }
    return { value: typed.value, issues };
  }

  protected with(check: Check<T>): this {
    this.checks.push(check);
    return this;
  }
}

const received = (input: unknown): string => (input === null ? 'null' : Array.isArray(input) ? 'array' : typeof input);

class NumberSchema extends Checked<number> {
  protected typed(input: unknown) {
    const value = Number(input);
    return Number.isFinite(value) ? { value } : { message: `Invalid input: expected number, received ${value}` };
  }

  int(): this {
    return this.with({
      abort: true,
      test: (v) => (Number.isInteger(v) ? null : 'Invalid input: expected int, received number'),
    }).with({
      test: (v) =>
        v > Number.MAX_SAFE_INTEGER
          ? `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`
          : v < Number.MIN_SAFE_INTEGER
            ? `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}`
            : null,
    });
  }

  min(n: number): this {
    return this.with({ test: (v) => (v >= n ? null : `Too small: expected number to be >=${n}`) });
  }

  max(n: number): this {
    return this.with({ test: (v) => (v <= n ? null : `Too big: expected number to be <=${n}`) });
  }

  positive(): this {
    return this.with({ test: (v) => (v > 0 ? null : 'Too small: expected number to be >0') });
  }
}

class StringSchema extends Checked<string> {
  protected typed(input: unknown) {
    return typeof input === 'string'
      ? { value: input }
      : { message: `Invalid input: expected string, received ${received(input)}` };
  }

  regex(pattern: RegExp, message?: string): this {
    return this.with({
      test: (v) => (pattern.test(v) ? null : (message ?? `Invalid string: must match pattern ${pattern}`)),
    });
  }

  min(n: number): this {
    return this.with({ test: (v) => (v.length >= n ? null : `Too small: expected string to have >=${n} characters`) });
  }
}

/** zod's own guard: with the http(s) protocol pattern, a URL must spell out `://` (no "http:example.com"). */
const HTTP_PROTOCOL = /^https?$/;
const TAB_OR_NEWLINE = /[\t\n\r]/g;

class UrlSchema extends Checked<string> {
  private readonly protocol: RegExp | undefined;

  constructor(protocol: RegExp | undefined) {
    super();
    this.protocol = protocol;
  }

  protected typed(input: unknown) {
    if (typeof input !== 'string') return { message: `Invalid input: expected string, received ${received(input)}` };
    const trimmed = input.trim();
    const url = URL.parse(trimmed);
    const httpOnly = this.protocol?.source === HTTP_PROTOCOL.source && !/^https?:\/\//i.test(trimmed);
    const protocolOk = !this.protocol || (url !== null && this.protocol.test(url.protocol.replace(/:$/, '')));
    if (url === null || httpOnly || !protocolOk) return { message: 'Invalid URL' };
    return { value: trimmed.replace(TAB_OR_NEWLINE, '') };
  }
}

class EnumSchema extends Checked<string> {
  private readonly values: string[];

  constructor(values: readonly string[]) {
    super();
    // As zod keeps them: as an object's keys, so integer-like ones ("0", "1") come first in its messages.
    this.values = Object.values(Object.fromEntries(values.map((v) => [v, v])));
  }

  protected typed(input: unknown) {
    if (typeof input === 'string' && this.values.includes(input)) return { value: input };
    const expected = this.values.map((v) => JSON.stringify(v));
    return {
      message:
        expected.length === 1
          ? `Invalid input: expected ${expected[0]}`
          : `Invalid option: expected one of ${expected.join('|')}`,
    };
  }
}

/** Unknown keys are dropped, every key's issues reported in the shape's order, each with its key in front. */
class ObjectSchema extends Schema {
  /** zod's name: scripts/env-example.ts and the tests list the variables by it. */
  readonly shape: Record<string, Schema>;

  constructor(shape: Record<string, Schema>) {
    super();
    this.shape = shape;
  }

  run(input: unknown): Outcome {
    if (typeof input !== 'object' || input === null)
      return fail(`Invalid input: expected object, received ${received(input)}`);
    const value: Record<string, unknown> = {};
    const issues: Outcome['issues'] = [];
    for (const [key, schema] of Object.entries(this.shape)) {
      const out = schema.run((input as Record<string, unknown>)[key]);
      for (const issue of out.issues) issues.push({ path: [key, ...issue.path], message: issue.message });
      if (out.value !== undefined || key in input) value[key] = out.value;
    }
    return { value, issues };
  }
}

type Z = typeof Zod;

export const z = {
  object: ((shape: Record<string, Schema>) => new ObjectSchema(shape)) as unknown as Z['object'],
  string: (() => new StringSchema()) as unknown as Z['string'],
  url: ((options?: { protocol?: RegExp }) => new UrlSchema(options?.protocol)) as unknown as Z['url'],
  enum: ((values: readonly string[]) => new EnumSchema(values)) as unknown as Z['enum'],
  coerce: { number: (() => new NumberSchema()) as unknown as Z['coerce']['number'] },
};
