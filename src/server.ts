import closeWithGrace from 'close-with-grace';
import pino, { type Logger } from 'pino';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, redactConfig, type Config } from './config.ts';
import { createServices } from './wiring.ts';

function createLogger(config: Config): Logger {
  return pino({
    level: config.logLevel,
    redact: { paths: ['req.headers.authorization', '*.apiKey', '*.OPENAI_API_KEY'], censor: '[redacted]' },
    // Pretty output is for people at a terminal; anything else (files, collectors) gets one JSON object a line.
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
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
  if (config.apiKeys.length === 0) {
    logger.warn('API_KEYS is not set: every /v1 route is OPEN to anyone who can reach this port');
  }
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
