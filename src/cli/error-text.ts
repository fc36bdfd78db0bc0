/**
 * Server messages name things as the HTTP API does (form fields, query parameters, headers). The CLI user typed
 * flags, so a message is rewritten into those; the stable code is never touched, only the words.
 */

/** Form fields whose message leads with the field's name ("model \"x\" is not available…"). */
const FLAG_FOR_FIELD: Readonly<Record<string, string>> = {
  language: '--language',
  prompt: '--prompt',
  model: '--model',
  metadata: '--metadata',
  callback_url: '--callback-url',
  max_cost_usd: '--max-cost-usd',
  dry_run: '--dry-run',
  'Idempotency-Key': '--idempotency-key',
};

/** API names that never mean anything else, so every mention is replaced (plain words like "model" are not). */
const API_TOKENS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bpartial=true\b/g, '--partial'],
  [/\bmax_cost_usd\b/g, '--max-cost-usd'],
  [/\bcallback_url\b/g, '--callback-url'],
  [/\bdry_run\b/g, '--dry-run'],
  [/\bIdempotency-Key\b/g, '--idempotency-key'],
];

export function inCliTerms(code: string, message: string, details?: Record<string, unknown>): string {
  if (code === 'UNAUTHORIZED' && (details?.reason === 'open_mode_remote' || details?.reason === 'open_mode_proxied')) {
    // No key would help: the service has none, and serves clients on its own machine only.
    return (
      'The service has no API keys and serves clients on its own machine only: run chunkscribe there (or through ' +
      '`ssh -L`), or have the service given API keys (API_KEYS; then pass one with --api-key) or OPEN_MODE_CLIENTS=any.'
    );
  }
  if (code === 'UNAUTHORIZED') {
    // The server's text names the Authorization header; here the key comes from a flag or the environment.
    return 'The service wants a valid API key: give it with --api-key or the CHUNKSCRIBE_API_KEY environment variable.';
  }
  let text = message;
  const field = typeof details?.field === 'string' ? details.field : undefined;
  const flag = field === undefined ? undefined : FLAG_FOR_FIELD[field];
  if (code === 'INVALID_FIELD' && field !== undefined && flag !== undefined) {
    if (text.startsWith(`${field} `)) text = `${flag}${text.slice(field.length)}`;
    // "send \"en\" instead of \"EN\"": the user sends nothing, they give a flag a value.
    text = text.replace(/\bsend\b/g, 'give');
  }
  for (const [pattern, replacement] of API_TOKENS) text = text.replace(pattern, replacement);
  return text;
}
