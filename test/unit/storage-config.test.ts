import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig } from '../../src/config.ts';

const issues = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
};

describe('object store configuration (STORAGE_URL, S3_*)', () => {
  it('defaults to local disk: no object store', () => {
    expect(loadConfig({}).objectStore).toBeNull();
  });

  it('reads bucket and prefix from STORAGE_URL (the prefix always ends in /), and the S3 settings', () => {
    expect(loadConfig({ STORAGE_URL: 's3://my-bucket' }).objectStore).toEqual({
      bucket: 'my-bucket',
      prefix: '',
      endpoint: undefined,
      region: 'us-east-1',
      forcePathStyle: false,
    });
    expect(
      loadConfig({
        STORAGE_URL: 's3://my.bucket-1/team/chunkscribe',
        S3_ENDPOINT: 'http://minio:9000',
        S3_REGION: 'auto',
        S3_FORCE_PATH_STYLE: '1',
      }).objectStore,
    ).toEqual({
      bucket: 'my.bucket-1',
      prefix: 'team/chunkscribe/',
      endpoint: 'http://minio:9000',
      region: 'auto',
      forcePathStyle: true,
    });
  });

  it.each([
    ['http://bucket/x'],
    ['s3://'],
    ['s3://Upper'],
    ['s3://ab'],
    ['s3://bucket/../x'],
    ['s3://bucket//x'],
    ['s3://bucket/a b'],
  ])('refuses STORAGE_URL=%s, naming the variable', (url) => {
    expect(issues({ STORAGE_URL: url })).toEqual([expect.stringMatching(/^STORAGE_URL: must be s3:\/\/bucket/)]);
  });

  it('refuses an S3_ENDPOINT that is not an http(s) URL and an unknown S3_FORCE_PATH_STYLE', () => {
    expect(issues({ STORAGE_URL: 's3://bucket', S3_ENDPOINT: 'ftp://host' })).toEqual([
      expect.stringMatching(/^S3_ENDPOINT: /),
    ]);
    expect(issues({ STORAGE_URL: 's3://bucket', S3_FORCE_PATH_STYLE: 'yes' })).toEqual([
      expect.stringMatching(/^S3_FORCE_PATH_STYLE: /),
    ]);
  });

  it('shows the endpoint without user-info or query values', () => {
    const config = loadConfig({
      STORAGE_URL: 's3://bucket',
      S3_ENDPOINT: 'https://user:pw@store.example:9000/?token=t',
    });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).toContain('https://***@store.example:9000/?token=***');
    expect(shown).not.toMatch(/pw|token=t/);
  });
});
