import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig, redactUrl } from '../../src/config.ts';

const SECRETS = [
  'base-user',
  'base-pass',
  'query-secret',
  'redis-user',
  'redis-pass',
  'db-secret',
  'frag-secret',
  'pg-user',
  'pg-pass',
  'pg-cert-secret',
  'sk-openai-key',
  'client-key-1',
];

describe('redactConfig', () => {
  it('shows the webhook ports as a list, not as an empty object', () => {
    expect(redactConfig(loadConfig({})).webhooks).toMatchObject({ ports: [80, 443], secret: '(unset)' });
    expect(redactConfig(loadConfig({ WEBHOOK_PORTS: 'any' })).webhooks).toMatchObject({ ports: 'any' });
  });

  it('keeps where every URL setting points and drops its user-info, query values and fragment', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-openai-key',
      OPENAI_BASE_URL: 'http://base-user:base-pass@llm.internal:8080/v1?api-key=query-secret&region=eu#frag-secret',
      REDIS_URL: 'rediss://redis-user:redis-pass@cache.internal:6380/2?password=db-secret',
      DATABASE_URL: 'postgres://pg-user:pg-pass@db.internal:5432/jobs?sslmode=require&sslkey=pg-cert-secret',
      API_KEYS: 'client-key-1',
    });
    const redacted = redactConfig(config);
    expect(redacted.openai).toEqual({
      apiKey: '(set)',
      baseURL: 'http://***@llm.internal:8080/v1?api-key=***&region=***',
    });
    expect(redacted.redisUrl).toBe('rediss://***@cache.internal:6380/2?password=***');
    expect(redacted.databaseUrl).toBe('postgres://***@db.internal:5432/jobs?sslmode=***&sslkey=***');
    const text = JSON.stringify(redacted);
    for (const secret of SECRETS) expect(text).not.toContain(secret);
    // The rest is the config as it was.
    expect(redacted.dataDir).toBe(config.dataDir);
    expect(redacted.apiKeys).toEqual(['env-1']);
  });

  it('says only that a setting is unset, or set but not a URL, and leaves a URL without secrets as it is', () => {
    const plain = redactConfig(loadConfig({}));
    expect(plain.redisUrl).toBe('(unset)');
    expect(plain.databaseUrl).toBe('(unset)');
    expect((plain.openai as { baseURL: string }).baseURL).toBe('(sdk default)');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('https://api.example/v1')).toBe('https://api.example/v1');
    expect(redactUrl('redis://:only-pass@h:1')).toBe('redis://***@h:1');
    expect(redactUrl('not a url with secret')).toBe('(set, not a URL)');
  });

  it('hides a REDIS_URL password in every form ioredis reads one from, not only redis:// URLs', () => {
    // What ioredis's parseURL takes a password from (a scheme-less URL gets redis:// put in front of it).
    const forms: Array<[string, string]> = [
      ['//:redis-pass@cache.internal:6379', '//***@cache.internal:6379'],
      ['redis-user:redis-pass@cache.internal:6379', '***@cache.internal:6379'],
      [':redis-pass@cache.internal:6379/2', '***@cache.internal:6379/2'],
      ['cache.internal:6379?password=redis-pass', 'cache.internal:6379?password=***'],
      ['/run/redis.sock?password=redis-pass&db=2', '/run/redis.sock?password=***&db=***'],
      ['/run/redis.sock', '/run/redis.sock'],
      ['REDIS://redis-user:redis-pass@cache.internal:1', 'redis://***@cache.internal:1'],
    ];
    for (const [value, shown] of forms) {
      const redacted = redactConfig(loadConfig({ REDIS_URL: value }));
      expect(redacted.redisUrl, value).toBe(shown);
      const text = JSON.stringify(redacted);
      for (const secret of ['redis-pass', 'redis-user']) expect(text, value).not.toContain(secret);
    }
  });

  it('refuses a DATABASE_URL that is not a postgres URL without repeating it', () => {
    for (const value of ['mysql://u:pg-pass@h/db', 'pg-pass', 'postgres:///no-host']) {
      let message = '';
      try {
        loadConfig({ DATABASE_URL: value });
      } catch (err) {
        message = String(err);
      }
      expect(message).toContain('DATABASE_URL: must be a postgres:// or postgresql:// URL');
      expect(message).not.toContain('pg-pass');
    }
  });
});
