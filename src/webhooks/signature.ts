import { createHmac } from 'node:crypto';

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Standard Webhooks (standardwebhooks.com) signing: HMAC-SHA256 over `<id>.<timestamp>.<body>` with the
 * base64-decoded part of the `whsec_` secret, sent as `v1,<base64 signature>`. Its verifiers exist for most
 * languages, and the id lets a receiver drop a redelivery.
 */
export function signWebhook(input: { secret: string; id: string; timestampS: number; body: string }): SignedHeaders {
  const key = Buffer.from(input.secret.replace(/^whsec_/, ''), 'base64');
  const timestamp = String(input.timestampS);
  const signature = createHmac('sha256', key).update(`${input.id}.${timestamp}.${input.body}`).digest('base64');
  return { 'webhook-id': input.id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}
