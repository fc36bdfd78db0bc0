import v8 from 'node:v8';

export type YoungGeneration = 'fixed' | 'grow';

/**
 * An upload arrives as one fresh ~64 KiB Buffer per socket read, dead as soon as it is on disk; its memory is
 * returned only when a scavenge collects the Buffer object. Left alone, V8 grows the young generation (up to
 * 16 MiB semi-spaces) while the modules load and under that allocation rate; scavenges then come so seldom
 * that V8's external-memory trigger (~64 MiB of dead ArrayBuffers) is what collects them, and the grown
 * semi-spaces are resident too. Keeping the young generation at its initial 1 MiB makes scavenges frequent and
 * cheap (nearly everything in it is dead). `grow` keeps V8's default, for a host that prefers fewer GCs to
 * less RSS. Only effective before the young generation has grown: call it before anything else is loaded.
 */
export function applyYoungGeneration(mode: YoungGeneration): void {
  if (mode === 'fixed') v8.setFlagsFromString('--semi-space-growth-factor=1');
}

/** GC_YOUNG_GENERATION as src/config.ts validates it; read here because this runs before the config is loaded. */
export function youngGenerationFromEnv(env: Record<string, string | undefined>): YoungGeneration {
  return env.GC_YOUNG_GENERATION === 'grow' ? 'grow' : 'fixed';
}

/** V8's compilers above its interpreter: Sparkplug (baseline code), Maglev and Turbofan (optimized code). */
const COMPILERS = ['sparkplug', 'maglev', 'turbofan'] as const;

/**
 * Holds V8's compilers off (bytecode is only interpreted) until the returned function is called, then lets them
 * work as always. While the service starts, what runs hot is code that runs once (module bodies, the config
 * parse, ajv and fast-json-stringify compiling the route schemas); what the compilers made of it, with their own
 * working memory, stayed resident: ~9 MiB of an idle service's RSS, for a start that took more CPU, not less
 * (docs/performance.md). Called before the service is loaded and released once it listens, so the request paths
 * are compiled as they get hot, as before.
 */
export function holdCompilers(): () => void {
  for (const compiler of COMPILERS) v8.setFlagsFromString(`--no-${compiler}`);
  return () => {
    for (const compiler of COMPILERS) v8.setFlagsFromString(`--${compiler}`);
  };
}
