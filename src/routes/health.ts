import type { FastifyInstance } from 'fastify';
import type { Services } from '../services.ts';

export default async function healthRoutes(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { services } = opts;

  // Liveness says only that the process answers: tying it to load or dependencies makes orchestrators restart busy pods.
  app.get('/health/live', async () => ({ status: 'ok' }));

  app.get('/health/ready', async (_request, reply) => {
    const report = await services.health();
    return reply.code(report.status === 'down' ? 503 : 200).send(report);
  });

  app.get('/health', async () => services.health());
}
