/**
 * src/config.ts reads the environment with a stand-in for zod (src/resources/env-schema.ts) that parses but
 * cannot be inspected. Imported before src/config.ts, this loads zod itself in its place, for a script that reads
 * the schema's bounds and defaults (scripts/env-example.ts).
 */
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    return nextResolve(specifier.endsWith('/resources/env-schema.ts') ? 'zod' : specifier, context);
  },
});
