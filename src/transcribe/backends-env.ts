import { readFileSync } from 'node:fs';
import { parseBackends, type BackendLimits, type BackendSpec, type BackendsSource } from './backends-config.ts';
import { ENGINES, type ProviderName } from './providers/index.ts';

/** The env settings the backends are made of (validated by src/config.ts's schema first). */
export interface BackendsEnv {
  TRANSCRIBE_PROVIDER?: ProviderName | undefined;
  OPENAI_API_KEY?: string | undefined;
  OPENAI_BASE_URL?: string | undefined;
  TRANSCRIBE_MODEL?: string | undefined;
  BACKENDS_FILE?: string | undefined;
  BACKENDS_JSON?: string | undefined;
  RATE_LIMIT_RPM: number;
  RATE_LIMIT_BURST: number;
  MAX_IN_FLIGHT: number;
  CIRCUIT_FAILURE_THRESHOLD: number;
  CIRCUIT_COOL_DOWN_MS: number;
}

/**
 * The declared backends (BACKENDS_FILE, BACKENDS_JSON), or the one today's env describes; the default model is
 * always one of theirs. `issues` names every problem (the config stops the start with them).
 */
export function backendsFromEnv(
  e: BackendsEnv,
  env: Record<string, string | undefined>,
): { backends: BackendSpec[]; model: string; issues: string[] } {
  const limits: BackendLimits = {
    rateLimit: { rpm: e.RATE_LIMIT_RPM, burst: e.RATE_LIMIT_BURST },
    maxInFlight: e.MAX_IN_FLIGHT,
    circuit: { failureThreshold: e.CIRCUIT_FAILURE_THRESHOLD, coolDownMs: e.CIRCUIT_COOL_DOWN_MS },
  };
  if (e.BACKENDS_FILE === undefined && e.BACKENDS_JSON === undefined) {
    const engine = e.TRANSCRIBE_PROVIDER ?? (e.OPENAI_API_KEY ? 'openai' : 'local');
    const model = e.TRANSCRIBE_MODEL ?? ENGINES[engine].defaultModel;
    const openai = { apiKey: e.OPENAI_API_KEY, baseURL: e.OPENAI_BASE_URL };
    const issues =
      engine === 'openai' && !e.OPENAI_API_KEY ? ['OPENAI_API_KEY: required when TRANSCRIBE_PROVIDER=openai'] : [];
    return { backends: [legacyBackend(engine, model, openai, limits)], model, issues };
  }
  // Two places saying which server to use would leave one of them silently ignored.
  const clashes = (['TRANSCRIBE_PROVIDER', 'OPENAI_BASE_URL'] as const)
    .filter((name) => e[name] !== undefined)
    .map((name) => `${name}: not used with BACKENDS_FILE/BACKENDS_JSON; declare the backend there instead`);
  const read = backendSources(e.BACKENDS_FILE, e.BACKENDS_JSON);
  const parsed = parseBackends(read.sources, limits, env);
  const { backends, defaultModel } = parsed.declaration;
  const issues = [...clashes, ...read.issues, ...parsed.issues];
  const known = backends.flatMap((b) => b.models.map((m) => m.id));
  const model = e.TRANSCRIBE_MODEL ?? defaultModel ?? known[0] ?? '';
  if (issues.length === 0 && !known.includes(model)) {
    issues.push(`TRANSCRIBE_MODEL: "${model}" is served by no declared backend; known: ${known.join(', ')}`);
  }
  return { backends, model, issues };
}

/** The one backend today's env describes (TRANSCRIBE_PROVIDER, OPENAI_*, TRANSCRIBE_MODEL): the engine's table. */
export function legacyBackend(
  engine: ProviderName,
  model: string,
  openai: { apiKey: string | undefined; baseURL: string | undefined },
  limits: BackendLimits,
): BackendSpec {
  const { models, unknownModel } = ENGINES[engine];
  const table = models.some((m) => m.id === model) ? models : [...models, unknownModel(model)];
  return {
    name: engine,
    engine,
    baseURL: engine === 'openai' ? openai.baseURL : undefined,
    apiKey: engine === 'openai' ? openai.apiKey : undefined,
    apiKeyEnv: engine === 'openai' ? 'OPENAI_API_KEY' : undefined,
    // Today's translation support: whisper-1 only.
    models: table.map((m) => ({ ...m, translation: engine === 'openai' && m.id === 'whisper-1' })),
    ...limits,
  };
}

/**
 * The sources BACKENDS_FILE (YAML, or JSON when it ends in .json) and BACKENDS_JSON name, in that order; an
 * unreadable file is an issue naming it.
 */
export function backendSources(
  file: string | undefined,
  json: string | undefined,
): { sources: BackendsSource[]; issues: string[] } {
  const sources: BackendsSource[] = [];
  const issues: string[] = [];
  if (file !== undefined) {
    try {
      const text = readFileSync(file, 'utf8');
      sources.push({ label: `BACKENDS_FILE (${file})`, text, format: file.endsWith('.json') ? 'json' : 'yaml' });
    } catch (err) {
      issues.push(`BACKENDS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  if (json !== undefined) sources.push({ label: 'BACKENDS_JSON', text: json, format: 'json' });
  return { sources, issues };
}
