import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { forwardTo } from '../../src/http/forward-to.ts';

/** The instance forwarded to: one page, one redirect; everything else is its own (Fastify's) 404. */
async function target(): Promise<FastifyInstance> {
  const inner = Fastify();
  inner.get('/page', async (_request, reply) => reply.header('etag', '"v1"').type('text/plain').send('the page'));
  inner.get('/old', async (_request, reply) => reply.redirect('/page'));
  await inner.ready();
  return inner;
}

describe('forwardTo', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
  });

  async function outer(build: () => Promise<FastifyInstance>): Promise<FastifyInstance> {
    app = Fastify();
    app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ error: { code: 'NOT_FOUND' } }));
    const forward = forwardTo(build);
    for (const url of ['/page', '/old', '/missing']) app.get(url, forward);
    await app.ready();
    return app;
  }

  it('builds the instance on the first request only, and answers with its status, headers and body', async () => {
    let builds = 0;
    const a = await outer(() => {
      builds++;
      return target();
    });
    expect(builds).toBe(0);
    const page = await a.inject('/page');
    expect([page.statusCode, page.headers['content-type'], page.headers.etag, page.body]).toEqual([
      200,
      'text/plain',
      '"v1"',
      'the page',
    ]);
    const head = await a.inject({ method: 'HEAD', url: '/page' });
    expect([head.statusCode, head.headers['content-length'], head.body]).toEqual([200, '8', '']);
    const moved = await a.inject('/old');
    expect([moved.statusCode, moved.headers.location, moved.headers['content-type'], moved.body]).toEqual([
      302,
      '/page',
      undefined,
      '',
    ]);
    expect(builds).toBe(1);
  });

  it("answers the instance's 404 with the app's own", async () => {
    const a = await outer(target);
    const missing = await a.inject('/missing');
    expect([missing.statusCode, missing.json()]).toEqual([404, { error: { code: 'NOT_FOUND' } }]);
  });

  it('tries the build again on the request after one that failed', async () => {
    let builds = 0;
    const a = await outer(async () => {
      builds++;
      if (builds === 1) throw new Error('first build fails');
      return target();
    });
    expect((await a.inject('/page')).statusCode).toBe(500);
    expect((await a.inject('/page')).body).toBe('the page');
    expect(builds).toBe(2);
  });
});
