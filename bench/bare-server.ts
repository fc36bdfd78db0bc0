/**
 * The polling reference: a bare Fastify app (no logger, no plugins) whose GET /v1/jobs/:id returns the JSON
 * in BODY_FILE, serialized per request like the service's route. The service's extra cost per poll is the
 * store read, the resource mapping, auth and request logging.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const file = process.env.BODY_FILE;
if (!file) throw new Error('BODY_FILE is required');
const body = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

const app = Fastify({ logger: false });
app.get<{ Params: { id: string } }>('/v1/jobs/:id', async () => body);
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
if (!address || typeof address === 'string') throw new Error('no port');
process.stdout.write(`listening ${address.port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
