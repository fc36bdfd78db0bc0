import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** public/ sits beside src/ and dist/, so the same relative path works from source and from the build. */
export const PUBLIC_DIR = path.resolve(import.meta.dirname, '../../../public');

// The page loads only its own files and talks only to this origin; nothing inline, nothing third-party.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The upload page at GET / and its assets under /assets/. wildcard:false registers one route per file found at
 * start, so unknown paths still reach the app's JSON 404 and no request can walk outside public/.
 */
export default async function webRoutes(app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    return payload;
  });
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    // Another plugin (an OpenAPI UI) may bring its own copy of @fastify/static; ours needs no reply.sendFile.
    decorateReply: false,
    // Assets are not content-hashed: always revalidate (ETag makes that a cheap 304).
    cacheControl: true,
    maxAge: 0,
  });
}
