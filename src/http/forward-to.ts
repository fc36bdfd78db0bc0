import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Headers of an answer that belong to its own connection, not to the document or file it carries. */
const OWN_HEADERS = new Set(['content-length', 'connection', 'keep-alive', 'date', 'transfer-encoding']);

/**
 * A GET handler that answers with what another Fastify instance answers to the same request (its status,
 * headers and body; a 404 is this app's own, in its error shape), that instance built by `build` on the first
 * request. For pages few ask for (the OpenAPI document and UI, the upload page): their plugins are loaded and
 * their routes built then, not kept by an idle service. A build that fails is tried again by the next request.
 */
export function forwardTo(build: () => Promise<FastifyInstance>) {
  let target: Promise<FastifyInstance> | undefined;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    target ??= build().catch((err: unknown) => {
      target = undefined;
      throw err;
    });
    // GET for a HEAD too: Fastify drops the body of a HEAD answer itself.
    const answer = await (await target).inject({ method: 'GET', url: request.url, headers: request.headers });
    if (answer.statusCode === 404) {
      reply.callNotFound();
      return reply;
    }
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !OWN_HEADERS.has(name)) reply.header(name, value);
    }
    // An empty body (a redirect, a 304) stays one: a Buffer, even empty, would be labelled application/octet-stream.
    return reply.code(answer.statusCode).send(answer.rawPayload.length > 0 ? answer.rawPayload : undefined);
  };
}
