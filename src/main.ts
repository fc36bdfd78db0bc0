/**
 * The service itself; src/server.ts loads it once the heap is set up (see there).
 */
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, redactConfig, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { createServices } from './wiring.ts';

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
  const services = await createServices(config, logger).catch((err: unknown) => {
    logger.fatal({ err }, 'cannot start');
    process.exit(1);
  });
  const app = await buildApp({ services, logger });

  closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an uncaught error');
    else logger.info({ signal }, 'shutting down');
    await app.close();
  });

  await services.start();
  await app.listen({ host: config.host, port: config.port });
}

await main();
