import { readdirSync, type Dirent } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { forwardTo } from '../forward-to.ts';

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
 * The files @fastify/static serves from public/ with wildcard:false: one URL per file found at start, and `/` for
 * the index.
 */
function publicUrls(app: FastifyInstance): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(PUBLIC_DIR, { recursive: true, withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // As @fastify/static does: a warning, and no page.
    app.log.warn(`"root" path "${PUBLIC_DIR}" must exist`);
    return [];
  }
  const files = entries
    .filter((entry) => entry.isFile())
    .map((entry) => `/${path.relative(PUBLIC_DIR, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')}`);
  return files.includes('/index.html') ? ['/', ...files] : files;
}

/** @fastify/static over public/, in a Fastify instance of its own (built on the page's first request). */
async function staticApp(): Promise<FastifyInstance> {
  const { default: fastifyStatic } = await import('@fastify/static');
  const files = Fastify();
  await files.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    // Assets are not content-hashed: always revalidate (ETag makes that a cheap 304).
    cacheControl: true,
    maxAge: 0,
  });
  await files.ready();
  return files;
}

/**
 * The upload page at GET / and its assets under /assets/. One route per file found at start (as @fastify/static
 * with wildcard:false registers them), so unknown paths still reach the app's JSON 404 and no request can walk
 * outside public/. The files are served by @fastify/static from an instance built on the first request
 * (forwardTo): loading it and its routes at start kept ~3.5 MiB of an idle service's RSS.
 */
export default async function webRoutes(app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    return payload;
  });
  const serve = forwardTo(staticApp);
  // Hidden from the OpenAPI document, as @fastify/static hides its own routes.
  for (const url of publicUrls(app)) app.get(url, { schema: { hide: true } }, serve);
}
