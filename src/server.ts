/**
 * The entry point. V8 sizes its young generation while modules are parsed and linked, which for a static
 * import graph happens before any of its code runs: the setting goes in first, then the service is loaded.
 */
import { applyYoungGeneration, youngGenerationFromEnv } from './resources/heap-tuning.ts';

applyYoungGeneration(youngGenerationFromEnv(process.env));
await import('./main.ts');
