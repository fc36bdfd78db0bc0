import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { modelsFor, resolveModel } from '../../src/transcribe/models.ts';
import { checkCallbackUrl } from '../../src/validate/callback-url.ts';
import { createRequestValidator, type TextFields } from '../../src/validate/request-validator.ts';

const validator = createRequestValidator({
  defaultModel: 'whisper-1',
  knownModels: ['whisper-1', 'gpt-4o-transcribe'],
});

/** The AppError the validator throws for these fields (fails the test if it does not throw one). */
function rejection(fields: TextFields, v = validator): AppError {
  try {
    v.validate(fields);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(fields)} to be rejected`);
}

function expectInvalid(fields: TextFields, field: string): AppError {
  const err = rejection(fields);
  expect(err.code).toBe('INVALID_FIELD');
  expect(err.statusCode).toBe(400);
  expect(err.details).toEqual({ field });
  expect(err.message).toContain(field);
  return err;
}

describe('request validator', () => {
  it('returns defaults when no field is sent', () => {
    const out = validator.validate({});
    expect(out.request).toEqual({
      language: null,
      prompt: null,
      model: 'whisper-1',
      metadata: null,
      callback_url: null,
      max_cost_usd: null,
      context: 'none',
    });
    expect(out.dryRun).toBe(false);
    expect(out.context).toBe('none');
    expect(out.ms).toBeGreaterThanOrEqual(0);
  });

  it('accepts every field with a good value', () => {
    const out = validator.validate({
      language: 'de',
      prompt: 'Names: Dashwood, Norland.',
      model: 'gpt-4o-transcribe',
      metadata: '{"ref":"abc","n":[1,2]}',
      callback_url: 'https://hooks.example.com/done?x=1',
      max_cost_usd: '2.50',
      dry_run: 'true',
      context: 'sequential',
    });
    expect(out.request).toEqual({
      language: 'de',
      prompt: 'Names: Dashwood, Norland.',
      model: 'gpt-4o-transcribe',
      metadata: { ref: 'abc', n: [1, 2] },
      callback_url: 'https://hooks.example.com/done?x=1',
      max_cost_usd: 2.5,
      context: 'sequential',
    });
    expect(out.dryRun).toBe(true);
    expect(out.context).toBe('sequential');
  });

  it('treats empty and blank fields as not sent', () => {
    const out = validator.validate({
      language: '',
      prompt: '   ',
      model: '',
      metadata: '',
      max_cost_usd: ' ',
      dry_run: '',
    });
    expect(out.request.language).toBeNull();
    expect(out.request.prompt).toBeNull();
    expect(out.request.model).toBe('whisper-1');
    expect(out.request.max_cost_usd).toBeNull();
    expect(out.dryRun).toBe(false);
  });

  it.each(['english', 'e', 'eng', 'xx', 'zz', 'en-US', '12'])('rejects language %j', (language) => {
    expectInvalid({ language }, 'language');
  });

  it('rejects an upper-case language and names the lower-case form', () => {
    expect(expectInvalid({ language: 'EN' }, 'language').message).toContain('"en"');
  });

  it.each(['en', 'fr', 'zh', 'yo'])('accepts language %j', (language) => {
    expect(validator.validate({ language }).request.language).toBe(language);
  });

  it('accepts a prompt of exactly the limit and rejects one character more', () => {
    const v = createRequestValidator({ defaultModel: 'm', knownModels: [], maxPromptChars: 10 });
    expect(v.validate({ prompt: '🙂'.repeat(10) }).request.prompt).toBe('🙂'.repeat(10));
    expect(rejection({ prompt: 'x'.repeat(11) }, v).details).toEqual({ field: 'prompt' });
  });

  it('rejects a prompt over the 1000-character default', () => {
    expectInvalid({ prompt: 'a'.repeat(1001) }, 'prompt');
    expect(validator.validate({ prompt: 'a'.repeat(1000) }).request.prompt).toHaveLength(1000);
  });

  it('rejects a model the provider does not know and lists the known ones', () => {
    const err = rejection({ model: 'whisper-2' });
    expect(err.code).toBe('INVALID_FIELD');
    expect(err.statusCode).toBe(400);
    expect(err.details).toEqual({ field: 'model', models: ['whisper-1', 'gpt-4o-transcribe'] });
    expect(err.message).toContain('whisper-1, gpt-4o-transcribe');
  });

  it('accepts the configured default model even when the provider list lacks it', () => {
    const v = createRequestValidator({ defaultModel: 'custom-model', knownModels: ['whisper-1'] });
    expect(v.validate({ model: 'custom-model' }).request.model).toBe('custom-model');
  });

  it.each([
    ['not json', '{ref:1}'],
    ['an array', '[1,2]'],
    ['null', 'null'],
    ['a string', '"abc"'],
    ['a number', '42'],
  ])('rejects metadata that is %s', (_, metadata) => {
    expectInvalid({ metadata }, 'metadata');
  });

  it('accepts metadata of exactly 16 KiB and rejects one byte more', () => {
    const make = (bytes: number) => `{"k":"${'x'.repeat(bytes - 8)}"}`;
    expect(Buffer.byteLength(make(16384))).toBe(16384);
    expect(validator.validate({ metadata: make(16384) }).request.metadata).not.toBeNull();
    expectInvalid({ metadata: make(16385) }, 'metadata');
  });

  it.each([
    'ftp://example.com/x',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'not a url',
    '/relative/path',
    'http://localhost:8080/cb',
    'http://api.localhost/cb',
    'http://127.0.0.1/cb',
    'http://2130706433/cb',
    'http://0x7f.1/cb',
    'http://10.1.2.3/cb',
    'http://172.16.0.1/cb',
    'http://192.168.1.1/cb',
    'http://169.254.169.254/latest/meta-data',
    'http://0.0.0.0/cb',
    'http://100.64.0.1/cb',
    'http://[::1]/cb',
    'http://[::]/cb',
    'http://[fe80::1]/cb',
    'http://[fd00::1]/cb',
    'http://[::ffff:127.0.0.1]/cb',
    'http://[::ffff:10.0.0.1]/cb',
    'http://224.0.0.1/cb',
    `https://example.com/${'a'.repeat(2100)}`,
  ])('rejects callback_url %s', (callback_url) => {
    expectInvalid({ callback_url }, 'callback_url');
  });

  it.each([
    'https://hooks.example.com/x',
    'http://93.184.216.34/cb',
    'https://hooks.example.com:443/x',
    'https://[2606:4700::1111]/cb',
  ])('accepts callback_url %s', (callback_url) => {
    expect(validator.validate({ callback_url }).request.callback_url).toBe(new URL(callback_url).href);
  });

  it.each(['http://93.184.216.34:8080/cb', 'https://hooks.example.com:25/x', 'https://hooks.example.com:8443/x'])(
    "refuses callback_url %s: a port other than the web's by default (WEBHOOK_PORTS)",
    (callback_url) => {
      const err = rejection({ callback_url });
      expect(err.details).toEqual({ field: 'callback_url' });
      expect(err.message).toMatch(/^callback_url uses port \d+; this server sends callbacks to ports 80, 443 only/);
    },
  );

  it('accepts the ports WEBHOOK_PORTS names, or every port with "any"', () => {
    const url = 'http://93.184.216.34:8080/cb';
    const listed = createRequestValidator({ defaultModel: 'm', knownModels: [], callbackPorts: new Set([8080]) });
    expect(listed.validate({ callback_url: url }).request.callback_url).toBe(url);
    expect(rejection({ callback_url: 'http://93.184.216.34/cb' }, listed).message).toMatch(/to port 8080 only/);
    const any = createRequestValidator({ defaultModel: 'm', knownModels: [], callbackPorts: 'any' });
    expect(any.validate({ callback_url: url }).request.callback_url).toBe(url);
  });

  it('accepts loopback and private callbacks when the option allows them', () => {
    const v = createRequestValidator({ defaultModel: 'm', knownModels: [], allowPrivateCallbacks: true });
    expect(v.validate({ callback_url: 'http://127.0.0.1:9999/cb' }).request.callback_url).toBe(
      'http://127.0.0.1:9999/cb',
    );
    expect(v.validate({ callback_url: 'http://localhost/cb' }).request.callback_url).toBe('http://localhost/cb');
    expect(rejection({ callback_url: 'ftp://127.0.0.1/' }, v).details).toEqual({ field: 'callback_url' });
  });

  it.each(['0', '-1', 'abc', '1e3', '0x10', 'Infinity', 'NaN', '1.2.3', '9'.repeat(400)])(
    'rejects max_cost_usd %j',
    (v) => {
      expectInvalid({ max_cost_usd: v }, 'max_cost_usd');
    },
  );

  it.each([
    ['0.01', 0.01],
    ['3', 3],
    ['.5', 0.5],
    ['10.', 10],
  ])('accepts max_cost_usd %j', (raw, value) => {
    expect(validator.validate({ max_cost_usd: raw }).request.max_cost_usd).toBe(value);
  });

  it.each([
    ['true', true],
    ['1', true],
    ['TRUE', true],
    ['false', false],
    ['0', false],
  ])('reads dry_run %j as %s', (raw, value) => {
    expect(validator.validate({ dry_run: raw }).dryRun).toBe(value);
  });

  it.each(['yes', 'on', '2', 'nope'])('rejects dry_run %j', (dry_run) => {
    expectInvalid({ dry_run }, 'dry_run');
  });

  it.each(['previous', 'Sequential', 'all'])('rejects context %j', (context) => {
    expectInvalid({ context }, 'context');
  });

  it('rejects an unknown field by its name', () => {
    const err = expectInvalid({ langauge: 'en' }, 'langauge');
    expect(err.message).toContain('language');
  });

  it('rejects file sent as a text field', () => {
    expectInvalid({ file: 'hello' }, 'file');
  });

  it('rejects a field sent twice', () => {
    expectInvalid({ language: ['en', 'de'] }, 'language');
  });

  describe('languages a model declares', () => {
    const local = createRequestValidator({
      defaultModel: 'pocketsphinx-en-us',
      knownModels: ['pocketsphinx-en-us', 'any-language'],
      languagesOf: (model) => (model === 'pocketsphinx-en-us' ? ['en'] : null),
    });

    it('refuses another language for that model, naming the ones it has', () => {
      const err = rejection({ language: 'de' }, local);
      expect(err.code).toBe('INVALID_FIELD');
      expect(err.statusCode).toBe(400);
      expect(err.details).toEqual({ field: 'language', languages: ['en'] });
      expect(err.message).toBe('language "de" is not recognised by model "pocketsphinx-en-us"; it recognises: en');
    });

    it('judges the language against the model the request names', () => {
      expect(local.validate({ language: 'de', model: 'any-language' }).request).toMatchObject({
        language: 'de',
        model: 'any-language',
      });
      expect(rejection({ language: 'de', model: 'pocketsphinx-en-us' }, local).details).toMatchObject({
        languages: ['en'],
      });
    });

    it('accepts its language, and no language', () => {
      expect(local.validate({ language: 'en' }).request.language).toBe('en');
      expect(local.validate({}).request.language).toBeNull();
    });

    it('the model table: the local engine is English only, the OpenAI models take any language', () => {
      expect(resolveModel('local', 'pocketsphinx-en-us').languages).toEqual(['en']);
      for (const id of modelsFor('openai')) expect(resolveModel('openai', id).languages, id).toBeNull();
      expect(resolveModel('openai', 'some-compatible-model').languages).toBeNull();
    });

    it('takes any ISO-639-1 code for models that declare none (the OpenAI models)', () => {
      expect(validator.validate({ language: 'de' }).request.language).toBe('de');
      expect(validator.validate({ language: 'yo', model: 'gpt-4o-transcribe' }).request.language).toBe('yo');
    });
  });
});

describe('checkCallbackUrl', () => {
  it('normalises the URL it accepts', () => {
    expect(checkCallbackUrl('HTTPS://Example.COM:443/a/../b')).toEqual({ ok: true, url: 'https://example.com/b' });
  });

  it('says why it refuses a private address', () => {
    const result = checkCallbackUrl('http://192.168.0.10/');
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('private') });
  });
});
