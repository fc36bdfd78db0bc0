import { errorMessage } from '../../../errors.ts';
import type { ProviderCheck } from '../../types.ts';

export interface ModelsCheckOptions {
  apiKey: string;
  /** An OpenAI-compatible server's API root, e.g. http://127.0.0.1:8080/v1. @default https://api.openai.com/v1 */
  baseURL?: string | undefined;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
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

/** The first ERROR_BODY_BYTES of an answer's body as text (the rest is not read: a server may send without end). */
async function headOf(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes < ERROR_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      bytes += value.length;
    }
  } catch {
    // A body cut short still says what it said.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(parts).subarray(0, ERROR_BODY_BYTES).toString('utf8');
}

/**
 * Whether the server can take work: GET {baseURL}/models with the key, as the SDK's `models.list()` sends it, but
 * with the platform fetch, so that the check (made at start and kept warm) does not load the SDK into an idle
 * service. A refused key or an exhausted quota is down with its code; no answer at all is unavailable; any other
 * answer is degraded (reachable, the key not refused: rate limits and 5xx are transient, and some compatible
 * servers lack /models). An abort is rethrown: the caller's timeout says what it means.
 */
export function createModelsCheck(options: ModelsCheckOptions): (signal?: AbortSignal) => Promise<ProviderCheck> {
  const url = `${(options.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '')}/models`;
  const send = options.fetch ?? fetch;
  return async (signal) => {
    let res: Response;
    try {
      res = await send(url, {
        headers: { authorization: `Bearer ${options.apiKey}`, accept: 'application/json' },
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      return {
        status: 'down',
        code: 'PROVIDER_UNAVAILABLE',
        detail: `cannot reach the provider: ${errorMessage(err)}`,
      };
    }
    if (res.ok) {
      await res.body?.cancel();
      return { status: 'ok', detail: 'models endpoint answered' };
    }
    const text = await headOf(res);
    if (res.status === 401 || res.status === 403) {
      return { status: 'down', code: 'PROVIDER_AUTH', detail: `the provider rejected the API key (${res.status})` };
    }
    if (res.status === 429 && errorCode(text) === 'insufficient_quota') {
      return { status: 'down', code: 'PROVIDER_QUOTA', detail: 'the provider account has no quota left' };
    }
    return { status: 'degraded', detail: `models endpoint answered ${res.status}` };
  };
}
