import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { signWebhook } from '../../src/webhooks/signature.ts';

// The Standard Webhooks specification's published test vector: matching it means any of its libraries verifies us.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestampS: 1614265330,
  body: '{"test": 2432232314}',
};

describe('signWebhook', () => {
  it('reproduces the Standard Webhooks reference signature', () => {
    expect(signWebhook(VECTOR)).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  it('signs the id, the timestamp and the body', () => {
    const base = signWebhook(VECTOR)['webhook-signature'];
    expect(signWebhook({ ...VECTOR, id: 'msg_other' })['webhook-signature']).not.toBe(base);
    expect(signWebhook({ ...VECTOR, timestampS: VECTOR.timestampS + 1 })['webhook-signature']).not.toBe(base);
    expect(signWebhook({ ...VECTOR, body: '{"test": 2432232315}' })['webhook-signature']).not.toBe(base);
  });
});

describe('webhook config', () => {
  it('takes a whsec_ secret and defaults to refusing private callback addresses', () => {
    const config = loadConfig({ WEBHOOK_SECRET: VECTOR.secret });
    expect(config.webhooks).toMatchObject({ secret: VECTOR.secret, allowPrivate: false, maxAttempts: 8 });
    expect(loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.allowPrivate).toBe(true);
  });

  it.each(['secret123', 'whsec_short', `whsec_${'a'.repeat(100)}`, 'whsec_not base64 at all!!!!!!!!!!!!!!!'])(
    'refuses WEBHOOK_SECRET=%j naming the variable',
    (secret) => {
      expect(() => loadConfig({ WEBHOOK_SECRET: secret })).toThrow(ConfigError);
      expect(() => loadConfig({ WEBHOOK_SECRET: secret })).toThrow(/WEBHOOK_SECRET/);
    },
  );

  it('refuses a WEBHOOK_ALLOW_PRIVATE that is not a boolean', () => {
    expect(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'yes please' })).toThrow(/WEBHOOK_ALLOW_PRIVATE/);
  });
});
