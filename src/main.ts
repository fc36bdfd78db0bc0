/**
 * The service itself; src/server.ts loads it once the heap is set up (see there).
 */
import closeWithGrace from 'close-with-grace';
import pino, { type Logger } from 'pino';
import { buildApp } from './http/app.ts';
import { ConfigError, loadConfig, redactConfig, type Config } from './config.ts';
import { StoreUnreadableError } from './jobs/sqlite-db.ts';
import { createLogger } from './logger.ts';
import { isMalformedStore } from './resources/disk-full.ts';
import { createServices, storeFile } from './service/wiring.ts';

/** EX_DATAERR (sysexits.h): the job store the service would start on is damaged. */
const EXIT_STORE_DAMAGED = 65;

/** Ends a start that failed: a damaged store as one line saying which file and what to do, anything else as is. */
function exitAfterFailedStart(logger: Logger, config: Config, err: unknown): never {
  const damaged =
    err instanceof StoreUnreadableError
      ? err
      : isMalformedStore(err)
        ? new StoreUnreadableError(storeFile(config), (err as Error).message, err)
        : null;
  if (damaged) {
    logger.fatal({ file: damaged.file, exitCode: EXIT_STORE_DAMAGED }, damaged.message);
    process.exit(EXIT_STORE_DAMAGED);
  }
  logger.fatal({ err }, 'cannot start');
  process.exit(1);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      pino().fatal({ issues: err.issues }, err.message);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger(config);
  logger.info({ config: redactConfig(config) }, 'configuration');
  const services = await createServices(config, logger).catch((err: unknown) =>
    exitAfterFailedStart(logger, config, err),
  );
  const app = await buildApp({ services, logger });

  closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an uncaught error');
    else logger.info({ signal }, 'shutting down');
    await app.close();
  });

  // The start reads the whole store (orphan sweep, cleanup, resume): a page damaged past the open-time check shows here.
  await services.start().catch(async (err: unknown) => {
    await services.close();
    exitAfterFailedStart(logger, config, err);
  });
  await app.listen({ host: config.host, port: config.port });
}

await main();
