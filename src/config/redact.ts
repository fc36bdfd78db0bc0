import type { Config } from './types.ts';

/** The config as it may be logged: secrets replaced by whether they are set, URLs without their credentials. */
export function redactConfig(config: Config): Record<string, unknown> {
  const redacted = {
    ...config,
    openai: { apiKey: config.openai.apiKey ? '(set)' : '(unset)', baseURL: config.openai.baseURL ?? '(sdk default)' },
    backends: config.backends.map((b) => ({
      ...b,
      apiKey: b.apiKey ? `(set${b.apiKeyEnv ? ` from ${b.apiKeyEnv}` : ''})` : '(unset)',
      baseURL: b.baseURL ?? '(sdk default)',
    })),
    apiKeys: config.apiKeys.map((k) => k.name),
    redisUrl: config.redisUrl === undefined ? '(unset)' : redactRedisUrl(config.redisUrl),
    databaseUrl: config.databaseUrl ?? '(unset)',
    metricsToken: config.metricsToken ? '(set)' : '(unset)',
    webhooks: {
      ...config.webhooks,
      secret: config.webhooks.secret ? '(set)' : '(unset)',
      // A Set would print as {}.
      ports: config.webhooks.ports === 'any' ? 'any' : [...config.webhooks.ports],
    },
  };
  // Every URL setting, present or future: OPENAI_BASE_URL, REDIS_URL and DATABASE_URL may carry a password or a key.
  return redactUrls(redacted) as Record<string, unknown>;
}

const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

function redactUrls(value: unknown): unknown {
  if (typeof value === 'string') return ABSOLUTE_URL.test(value) ? redactUrl(value) : value;
  if (Array.isArray(value)) return value.map(redactUrls);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactUrls(v)]));
  return value;
}

/**
 * A URL as it may be shown: scheme, host, port and path kept (what an operator needs to recognise it),
 * user-info and every query value replaced by `***`, a fragment dropped. Not a URL at all: only that it is set.
 */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return '(set, not a URL)';
  }
  const userInfo = url.username !== '' || url.password !== '' ? '***@' : '';
  const query = [...url.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&');
  return `${url.protocol}//${userInfo}${url.host}${url.pathname}${query === '' ? '' : `?${query}`}`;
}

/**
 * REDIS_URL as it may be shown. ioredis reads a password from more than a redis:// URL (its parseURL): from
 * `//:pass@host`, from `user:pass@host:port` with no scheme at all, and from a unix socket path's query
 * (`/run/redis.sock?password=...`); each is redacted as the URL ioredis makes of it, shown in the form it was given.
 */
export function redactRedisUrl(value: string): string {
  if (ABSOLUTE_URL.test(value)) return redactUrl(value);
  if (value.startsWith('//')) return dropPrefix(redactUrl(`redis:${value}`), 'redis:');
  if (value.startsWith('/')) {
    const at = value.indexOf('?');
    if (at === -1) return value;
    const query = [...new URLSearchParams(value.slice(at + 1)).keys()].map((k) => `${encodeURIComponent(k)}=***`);
    return `${value.slice(0, at)}?${query.join('&')}`;
  }
  return dropPrefix(redactUrl(`redis://${value}`), 'redis://');
}

const dropPrefix = (shown: string, prefix: string): string =>
  shown.startsWith(prefix) ? shown.slice(prefix.length) : shown;
