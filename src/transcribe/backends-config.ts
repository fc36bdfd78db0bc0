import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type * as Zod from 'zod';
import type { ModelInfo } from './models.ts';
import { ENGINES, PROVIDER_NAMES, type ProviderName } from './providers/index.ts';

// zod and the YAML parser are loaded only to read a declaration (BACKENDS_FILE, BACKENDS_JSON): a service
// without one need not hold them (zod alone ~7 MiB of an idle service's RSS). require, not import(): the config
// is read synchronously at start.
const require = createRequire(import.meta.url);
const parseYaml = (text: string): unknown => (require('yaml') as typeof Yaml).parse(text);

/** One model a backend serves: the catalogue's facts (caps, timing, languages, price) and what else it can do. */
/** A model as a backend declares it: ModelInfo's facts (translation included). */
export type BackendModel = ModelInfo;

/** Limits of one backend, each its own: a slow or failing server holds up only the jobs sent to it. */
export interface BackendLimits {
  rateLimit: { rpm: number; burst: number };
  maxInFlight: number;
  circuit: { failureThreshold: number; coolDownMs: number };
}

/** A transcription server and the models it serves (BACKENDS_FILE / BACKENDS_JSON, or the legacy env). */
export interface BackendSpec extends BackendLimits {
  /** Its name in logs, metrics (the `provider` label), /health and the shared rate limit's Redis keys. */
  name: string;
  engine: ProviderName;
  /** An OpenAI-compatible server's base URL (with /v1); undefined: the SDK's (api.openai.com). */
  baseURL: string | undefined;
  /** The key itself (from the env variable the declaration names); never logged (redactConfig). */
  apiKey: string | undefined;
  /** The env variable the key came from, shown instead of the key. */
  apiKeyEnv: string | undefined;
  models: BackendModel[];
}

/** The declared backends and the model a job gets when it names none (null: the first declared model). */
export interface BackendsDeclaration {
  backends: BackendSpec[];
  defaultModel: string | null;
}

const MiB = 1024 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LANGUAGE = /^[a-z]{2}$/;

/** The declaration's schemas, built with zod on first use. */
function buildSchemas() {
  const { z } = require('zod') as typeof Zod;
  const modelSchema = z.strictObject({
    id: z.string().trim().min(1).max(200),
    /** verbose_json segment times. */
    segments: z.boolean().optional(),
    /** timestamp_granularities[]=word; needs segments. */
    words: z.boolean().optional(),
    max_bytes: z.number().int().min(1024).optional(),
    /** null: no cap. */
    max_seconds: z.number().positive().nullable().optional(),
    price_per_minute: z.number().min(0).optional(),
    /** null: any language (the backend detects it). */
    languages: z
      .array(z.string().regex(LANGUAGE, 'must be an ISO-639-1 code such as "en"'))
      .min(1)
      .nullable()
      .optional(),
    translation: z.boolean().optional(),
  });

  const backendSchema = z.strictObject({
    name: z.string().regex(NAME, 'must be 1 to 64 letters, digits, "_", "." or "-"'),
    engine: z.enum(PROVIDER_NAMES),
    base_url: z.url({ protocol: /^https?$/ }).optional(),
    /** The NAME of the env variable holding the key, so the file holds no secret. */
    api_key_env: z.string().regex(ENV_NAME, 'must be an environment variable name').optional(),
    models: z.array(modelSchema).min(1),
    rate_limit: z
      .strictObject({ rpm: z.number().min(0.1).max(1_000_000), burst: z.number().int().min(1).max(1_000_000) })
      .partial()
      .optional(),
    max_in_flight: z.number().int().min(1).max(256).optional(),
    circuit: z
      .strictObject({
        failure_threshold: z.number().int().min(1).max(1_000),
        cool_down_ms: z.number().int().min(1).max(3_600_000),
      })
      .partial()
      .optional(),
  });

  const file = z.strictObject({
    default_model: z.string().trim().min(1).optional(),
    backends: z.array(backendSchema).min(1).max(32),
  });
  return { model: modelSchema, backend: backendSchema, file };
}

let schemas: ReturnType<typeof buildSchemas> | undefined;

type ModelDecl = Zod.infer<ReturnType<typeof buildSchemas>['model']>;
type BackendDecl = Zod.infer<ReturnType<typeof buildSchemas>['backend']>;

/** Where a declaration came from, for messages: `BACKENDS_FILE (/etc/backends.yaml)` or `BACKENDS_JSON`. */
export interface BackendsSource {
  label: string;
  text: string;
  format: 'json' | 'yaml';
}

/** A JSON path as the operator reads it: backends[1].models[0].price_per_minute. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** What is assumed of a model the engine's table does not know, where the declaration is silent. */
const UNKNOWN_MODEL = {
  maxBytes: 25 * MiB,
  maxSeconds: Infinity,
  segmentTimes: false,
  wordTimes: false,
  languages: null,
} satisfies Partial<ModelInfo>;

/** The declared fields, named as ModelInfo names them; an undeclared one is left out so it does not override. */
function declaredFacts(decl: ModelDecl): Partial<ModelInfo> {
  const facts: Partial<ModelInfo> = {
    segmentTimes: decl.segments,
    wordTimes: decl.words,
    maxBytes: decl.max_bytes,
    maxSeconds: decl.max_seconds === null ? Infinity : decl.max_seconds,
    pricePerMinuteUsd: decl.price_per_minute,
    languages: decl.languages,
  };
  return Object.fromEntries(Object.entries(facts).filter(([, v]) => v !== undefined));
}

/** A model's facts: the engine's table where it knows the id, then what the declaration says. */
function backendModel(engine: ProviderName, decl: ModelDecl, at: string, issues: string[]): BackendModel {
  const table = ENGINES[engine].models.find((m) => m.id === decl.id);
  const facts = { ...UNKNOWN_MODEL, ...table, ...declaredFacts(decl) };
  if (decl.words === true && !facts.segmentTimes) {
    issues.push(`${at}.words: word times come with verbose_json; set segments: true`);
  }
  if (facts.pricePerMinuteUsd === undefined) {
    issues.push(`${at}.price_per_minute: required for a model the ${engine} table does not know (0 for self-hosted)`);
  }
  return {
    ...facts,
    id: decl.id,
    // A table model declared without segments gets no words either: they come in verbose_json only.
    wordTimes: facts.wordTimes && facts.segmentTimes,
    pricePerMinuteUsd: facts.pricePerMinuteUsd ?? 0,
    // Declared by the operator: as good as the engine's own table for caps and price.
    known: true,
    translation: decl.translation ?? false,
  };
}

function backendSpec(
  decl: BackendDecl,
  at: string,
  defaults: BackendLimits,
  env: Record<string, string | undefined>,
  issues: string[],
): BackendSpec {
  let apiKey: string | undefined;
  if (decl.api_key_env !== undefined) {
    apiKey = env[decl.api_key_env]?.trim() || undefined;
    if (apiKey === undefined) issues.push(`${at}.api_key_env: the environment variable ${decl.api_key_env} is not set`);
  } else if (decl.engine === 'openai' && decl.base_url === undefined) {
    issues.push(`${at}.api_key_env: required for api.openai.com (name the environment variable holding the key)`);
  }
  if (decl.engine === 'local' && (decl.base_url !== undefined || decl.api_key_env !== undefined)) {
    issues.push(`${at}: the local engine runs on this machine; it takes no base_url or api_key_env`);
  }
  return {
    name: decl.name,
    engine: decl.engine,
    baseURL: decl.base_url,
    apiKey,
    apiKeyEnv: decl.api_key_env,
    models: decl.models.map((m, i) => backendModel(decl.engine, m, `${at}.models[${i}]`, issues)),
    rateLimit: { ...defaults.rateLimit, ...decl.rate_limit },
    maxInFlight: decl.max_in_flight ?? defaults.maxInFlight,
    circuit: {
      failureThreshold: decl.circuit?.failure_threshold ?? defaults.circuit.failureThreshold,
      coolDownMs: decl.circuit?.cool_down_ms ?? defaults.circuit.coolDownMs,
    },
  };
}

/** What only the declarations together can break: unique names and models, one default model that is served. */
function acrossSources(
  backends: readonly BackendSpec[],
  defaultModels: readonly string[],
  checkDefault: boolean,
): string[] {
  const issues: string[] = [];
  const names = new Set<string>();
  const servedBy = new Map<string, string>();
  for (const b of backends) {
    if (names.has(b.name)) issues.push(`backends: the name "${b.name}" is declared twice`);
    names.add(b.name);
    for (const m of b.models) {
      const other = servedBy.get(m.id);
      if (other !== undefined) {
        issues.push(
          `backends: model "${m.id}" is declared by both "${other}" and "${b.name}"; a model has one backend`,
        );
      }
      servedBy.set(m.id, b.name);
    }
  }
  if (new Set(defaultModels).size > 1)
    issues.push(`backends: default_model is declared as ${defaultModels.join(' and ')}`);
  const defaultModel = defaultModels[0];
  if (checkDefault && issues.length === 0 && defaultModel !== undefined && !servedBy.has(defaultModel)) {
    issues.push(`backends: default_model "${defaultModel}" is served by no declared backend`);
  }
  return issues;
}

/**
 * The backends of one or more declarations (BACKENDS_FILE, then BACKENDS_JSON), validated as a whole: names and
 * model ids are unique across them, each key's env variable is set. Returns the backends, or every problem found,
 * each naming its source and path (never a key's value).
 */
export function parseBackends(
  sources: readonly BackendsSource[],
  defaults: BackendLimits,
  env: Record<string, string | undefined>,
): { declaration: BackendsDeclaration; issues: string[] } {
  const issues: string[] = [];
  const backends: BackendSpec[] = [];
  const defaultModels: string[] = [];
  for (const source of sources) {
    let raw: unknown;
    try {
      raw = source.format === 'yaml' ? parseYaml(source.text) : JSON.parse(source.text);
    } catch (err) {
      issues.push(
        `${source.label}: not valid ${source.format.toUpperCase()}: ${(err as Error).message.split('\n')[0]}`,
      );
      continue;
    }
    schemas ??= buildSchemas();
    const parsed = schemas.file.safeParse(raw);
    if (!parsed.success) {
      for (const i of parsed.error.issues) issues.push(`${source.label}: ${pathText(i.path) || '(top)'}: ${i.message}`);
      continue;
    }
    if (parsed.data.default_model !== undefined) defaultModels.push(parsed.data.default_model);
    parsed.data.backends.forEach((b, i) =>
      backends.push(backendSpec(b, `${source.label}: backends[${i}]`, defaults, env, issues)),
    );
  }
  const defaultModel = defaultModels[0] ?? null;
  issues.push(...acrossSources(backends, defaultModels, issues.length === 0));
  return { declaration: { backends, defaultModel }, issues };
}
