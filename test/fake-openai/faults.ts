/**
 * What the fake server can do instead of answering normally. HTTP faults answer with OpenAI's error shape
 * `{ error: { message, type, param, code } }`; `drop` destroys the socket once the request body is read;
 * `stall` reads the request and never answers (until the client gives up or the server closes); `flood` answers 200
 * with a JSON transcript whose text never ends (or ends after `bytes`), as fast as the client reads it.
 */
export type Fault =
  /** 429 rate_limit_exceeded with Retry-After (seconds; null sends none) and x-ratelimit-* headers. @default retryAfterS 1 */
  | { type: 'rate_limit'; retryAfterS?: number | null }
  /** 429 insufficient_quota (the account is out of credit; retrying cannot help). */
  | { type: 'quota' }
  /** 401 invalid_api_key, whatever key was sent. */
  | { type: 'auth' }
  /** 403 unsupported_country_region_territory. */
  | { type: 'forbidden' }
  /** 400 "Audio file might be corrupted or unsupported" (param file). */
  | { type: 'bad_audio' }
  /** 400 "Audio file is too short" (param file), as OpenAI answers audio under 0.1 s. */
  | { type: 'too_short' }
  /** 413 Maximum content size limit exceeded. */
  | { type: 'too_large' }
  /** 500 and 503 with OpenAI's JSON; 502 with an HTML body like a gateway would send. @default status 500 */
  | { type: 'server_error'; status?: 500 | 502 | 503 }
  | { type: 'drop' }
  | { type: 'stall' }
  /** 200 application/json `{"text":"aaa…` without end, or a whole transcript of about `bytes` bytes. */
  | { type: 'flood'; bytes?: number };

export type FaultName = Fault['type'];
/** A fault, its name as shorthand, or null for "answer normally". */
export type FaultSpec = Fault | FaultName | null;

export interface RandomFaults {
  seed: number;
  /** Chance in [0, 1] that a request gets a fault. */
  probability: number;
  /** Drawn uniformly. @default ['rate_limit', { type: 'server_error', status: 503 }, 'drop'] */
  faults?: FaultSpec[];
}

export interface HttpFault {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function toFault(spec: FaultSpec | undefined): Fault | null {
  if (spec === null || spec === undefined) return null;
  return typeof spec === 'string' ? ({ type: spec } as Fault) : spec;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same fault sequence on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function errorJson(message: string, type: string, param: string | null, code: string | null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** The response an HTTP fault sends; null for drop, stall and flood, which send none (flood sends its own). */
export function httpFault(fault: Fault, model: string | null, bytes: number | null): HttpFault | null {
  switch (fault.type) {
    case 'rate_limit': {
      const s = fault.retryAfterS === undefined ? 1 : fault.retryAfterS;
      const headers: Record<string, string> = {
        ...JSON_TYPE,
        'x-ratelimit-limit-requests': '20',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': `${s ?? 1}s`,
        'x-ratelimit-limit-tokens': '50000',
        'x-ratelimit-remaining-tokens': '49000',
        'x-ratelimit-reset-tokens': '1.2s',
      };
      if (s !== null) headers['retry-after'] = String(s);
      const message =
        `Rate limit reached for ${model ?? 'whisper-1'} in organization org-fake on requests per min (RPM): ` +
        `Limit 20, Used 20, Requested 1. Please try again in ${s ?? 1}s.`;
      return { status: 429, headers, body: errorJson(message, 'requests', null, 'rate_limit_exceeded') };
    }
    case 'quota':
      return {
        status: 429,
        headers: JSON_TYPE,
        body: errorJson(
          'You exceeded your current quota, please check your plan and billing details.',
          'insufficient_quota',
          null,
          'insufficient_quota',
        ),
      };
    case 'auth':
      return {
        status: 401,
        headers: JSON_TYPE,
        body: errorJson(
          'Incorrect API key provided: sk-fake***. You can find your API key at https://platform.openai.com/account/api-keys.',
          'invalid_request_error',
          null,
          'invalid_api_key',
        ),
      };
    case 'forbidden':
      return {
        status: 403,
        headers: JSON_TYPE,
        body: errorJson(
          'Country, region, or territory not supported',
          'request_forbidden',
          null,
          'unsupported_country_region_territory',
        ),
      };
    case 'bad_audio':
      return {
        status: 400,
        headers: JSON_TYPE,
        body: errorJson(
          'Audio file might be corrupted or unsupported',
          'invalid_request_error',
          'file',
          'invalid_value',
        ),
      };
    case 'too_short':
      return {
        status: 400,
        headers: JSON_TYPE,
        body: errorJson(
          'Audio file is too short. Minimum audio length is 0.1 seconds.',
          'invalid_request_error',
          'file',
          'audio_too_short',
        ),
      };
    case 'too_large':
      return tooLarge(bytes ?? 0);
    case 'server_error': {
      const status = fault.status ?? 500;
      if (status === 502) {
        return {
          status,
          headers: { 'content-type': 'text/html' },
          body: '<html><body><h1>502 Bad Gateway</h1></body></html>',
        };
      }
      const message =
        status === 503
          ? 'The engine is currently overloaded, please try again later.'
          : 'The server had an error while processing your request. Sorry about that!';
      return { status, headers: JSON_TYPE, body: errorJson(message, 'server_error', null, null) };
    }
    case 'drop':
    case 'stall':
    case 'flood':
      return null;
  }
}

export function tooLarge(bytesRead: number, limit = 25 * 1024 * 1024): HttpFault {
  return {
    status: 413,
    headers: JSON_TYPE,
    body: errorJson(
      `Maximum content size limit (${limit}) exceeded (${bytesRead} bytes read)`,
      'server_error',
      null,
      null,
    ),
  };
}
