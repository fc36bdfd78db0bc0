import type { TestProject } from 'vitest/node';
import { speechFixture } from './fixtures/speech.ts';
import { startTestPostgres } from './support/postgres-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** TEST_STORE=postgresql: the URL (without a database) of the cluster every in-process service keeps its jobs in. */
    testPostgresUrl: string | null;
  }
}

/**
 * Generated once before any test file runs, so parallel workers never race to write the same fixture. With
 * TEST_STORE=postgresql the services the tests start (test/helper.ts) keep their jobs in one throw-away PostgreSQL
 * cluster instead of SQLite, each DATA_DIR its own database: the same tests then run against the other store.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  speechFixture();
  if (process.env.TEST_STORE !== 'postgresql') {
    project.provide('testPostgresUrl', null);
    return undefined;
  }
  const pg = await startTestPostgres();
  project.provide('testPostgresUrl', pg.urlOf(''));
  return () => pg.stop();
}
