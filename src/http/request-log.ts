import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * One log line per request instead of Fastify's two, and for a read that succeeded (a poll, a health probe, a
 * download) at debug: at LOG_LEVEL=info, writing log lines was the largest part of a poll's cost, and clients
 * poll many times a second. Every write and every failure stays at info (or error). The line that is kept
 * carries what the dropped one had (method, URL); the dropped one is still there at debug.
 */
export class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const fields = {
      method: request.method,
      url: request.url,
      statusCode: reply.statusCode,
      responseTime: reply.elapsedTime,
      // The client's address: behind a trusted proxy (TRUST_PROXY), the one it forwarded.
      remoteAddress: request.ip,
    };
    if (error) reply.log.error({ ...fields, err: error }, 'request errored');
    else if (reply.statusCode < 400 && (request.method === 'GET' || request.method === 'HEAD'))
      reply.log.debug(fields, 'request completed');
    else reply.log.info(fields, 'request completed');
  }
}
