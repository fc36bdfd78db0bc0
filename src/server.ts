/**
 * The entry point. V8 sizes its young generation while modules are parsed and linked, which for a static
 * import graph happens before any of its code runs: the setting goes in first, then the service is loaded.
 * V8's compilers are held off while it starts (code that runs once) and released once it listens
 * (main.ts's top-level await ends there).
 */
import { applyYoungGeneration, holdCompilers, youngGenerationFromEnv } from './resources/heap-tuning.ts';

applyYoungGeneration(youngGenerationFromEnv(process.env));
const releaseCompilers = holdCompilers();
await import('./main.ts');
releaseCompilers();
