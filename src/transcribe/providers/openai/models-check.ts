import type { IncomingMessage } from 'node:http';
import { errorMessage } from '../../../errors.ts';
import type { ProviderCheck } from '../../types.ts';

// Not the platform fetch nor `import http from 'node:http'`: either loads Node's bundled undici (~12 MiB RSS), and
// this check runs in the idle service (asked at start, kept warm); the CommonJS objects do not.
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

export interface ModelsCheckOptions {
  apiKey: string;
  /** An OpenAI-compatible server's API root, e.g. http://127.0.0.1:8080/v1. @default https://api.openai.com/v1 */
  baseURL?: string | undefined;
}

/** Bytes of an error answer read for its code: OpenAI's error JSON is a few hundred. */
const ERROR_BODY_BYTES = 16 * 1024;

/** The `error.code` of OpenAI's error JSON, or null. */
function errorCode(text: string): string | null {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown } } | null;
    return typeof body?.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}

/** GET url: the status and the first ERROR_BODY_BYTES of the body as text (the rest is not read). */
function get(
  url: URL,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.get(url, { headers, ...(signal ? { signal } : {}) }, (res: IncomingMessage) => {
      const parts: Buffer[] = [];
      let bytes = 0;
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          head: Buffer.concat(parts).toString('utf8', 0, Math.min(bytes, ERROR_BODY_BYTES)),
        });
      res.on('data', (piece: Buffer) => {
        parts.push(piece);
        bytes += piece.length;
        // A server may send without end: what is needed has come.
        if (bytes >= ERROR_BODY_BYTES) res.destroy();
      });
      // A body cut short (or cut here) still says what it said.
      res.on('close', done);
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
}

/**
 * Whether the server can take work: GET {baseURL}/models with the key, as the SDK's `models.list()` sends it, but
 * with node:http, so that the check (made at start and kept warm) loads neither the SDK nor undici into an idle
 * service. A refused key or an exhausted quota is down with its code; no answer at all is unavailable; any other
 * answer is degraded (reachable, the key not refused: rate limits and 5xx are transient, and some compatible
 * servers lack /models). An abort is rethrown: the caller's timeout says what it means.
 */
export function createModelsCheck(options: ModelsCheckOptions): (signal?: AbortSignal) => Promise<ProviderCheck> {
  const url = `${(options.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '')}/models`;
  const headers = { authorization: `Bearer ${options.apiKey}`, accept: 'application/json' };
  return async (signal) => {
    let res: { status: number; head: string };
    try {
      res = await get(new URL(url), headers, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      return {
        status: 'down',
        code: 'PROVIDER_UNAVAILABLE',
        detail: `cannot reach the provider: ${errorMessage(err)}`,
      };
    }
    if (res.status >= 200 && res.status < 300) return { status: 'ok', detail: 'models endpoint answered' };
    if (res.status === 401 || res.status === 403) {
      return { status: 'down', code: 'PROVIDER_AUTH', detail: `the provider rejected the API key (${res.status})` };
    }
    if (res.status === 429 && errorCode(res.head) === 'insufficient_quota') {
      return { status: 'down', code: 'PROVIDER_QUOTA', detail: 'the provider account has no quota left' };
    }
    return { status: 'degraded', detail: `models endpoint answered ${res.status}` };
  };
}
