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

  it('sends callbacks to the web ports by default, to every port with private receivers, or to WEBHOOK_PORTS', () => {
    expect(loadConfig({}).webhooks.ports).toEqual(new Set([80, 443]));
    expect(loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.ports).toBe('any');
    expect(loadConfig({ WEBHOOK_PORTS: 'any' }).webhooks.ports).toBe('any');
    expect(loadConfig({ WEBHOOK_PORTS: ' 443, 8443 ' }).webhooks.ports).toEqual(new Set([443, 8443]));
    expect(loadConfig({ WEBHOOK_PORTS: '443', WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.ports).toEqual(new Set([443]));
  });

  it.each(['0', '65536', '99999', 'http', '80;443', '80,', ',443', 'any,80', '-1', Array(65).fill('80').join(',')])(
    'refuses WEBHOOK_PORTS=%j naming the variable',
    (ports) => {
      expect(() => loadConfig({ WEBHOOK_PORTS: ports })).toThrow(ConfigError);
      expect(() => loadConfig({ WEBHOOK_PORTS: ports })).toThrow(/WEBHOOK_PORTS/);
    },
  );

  it('refuses a WEBHOOK_ALLOW_PRIVATE that is not a boolean', () => {
    expect(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'yes please' })).toThrow(/WEBHOOK_ALLOW_PRIVATE/);
  });
});
