/**
 * Loaded with `node --import` into a service process under test: appends the URL of every module the process
 * resolves, one per line, to the file IMPORT_LOG names, so a test can tell which packages a process has loaded
 * (ESM has no require.cache to look at). On SIGWINCH (ignored by default, and not one the service's graceful close listens for, as it does for SIGUSR2) it appends Node's own modules loaded so far
 * (`process.moduleLoadList`), each line prefixed `builtin:`.
 */
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const log = process.env.IMPORT_LOG;
if (log) {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      appendFileSync(log, `${resolved.url}\n`);
      return resolved;
    },
  });
  process.on('SIGWINCH', () => {
    // Not in @types/node: a list of strings such as `NativeModule http` and `Internal Binding fs`.
    const { moduleLoadList } = process as unknown as { moduleLoadList: string[] };
    appendFileSync(log, moduleLoadList.map((m) => `builtin:${m}\n`).join(''));
  });
}
