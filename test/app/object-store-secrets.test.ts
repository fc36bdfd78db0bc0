import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, tempDataDir, upload } from '../helper.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/s3-server.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { expectError } from './hostile-kit.ts';

/** s3rver checks the access key id (its own: S3RVER), not the signature: any secret is taken, so one can be marked. */
const SECRET = 'aws-secret-MARK-0123456789abcdef';
const REFUSED_KEY_ID = 'AKIAREFUSEDKEYMARK00';

describe('object store credentials stay out of logs and /health (the real service process)', () => {
  let s3: TestS3;
  const dirs: string[] = [];
  const services: ServiceProcess[] = [];
  const spawn = async (env: Record<string, string>) => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const service = spawnService({
      DATA_DIR: dataDir,
      TRANSCRIBE_PROVIDER: 'local',
      LOG_LEVEL: 'debug',
      ...s3Env(s3),
      AWS_SECRET_ACCESS_KEY: SECRET,
      ...env,
    });
    services.push(service);
    return service;
  };

  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    for (const service of services) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    await s3?.close();
    for (const d of dirs) await removeDir(d);
  });

  it('a working store, a put that fails, /health with details: no key id, no secret', async () => {
    const service = await spawn({
      AWS_ACCESS_KEY_ID: 'S3RVER',
      API_KEYS: 'key-secrets-0123456789',
      METRICS_TOKEN: 'token-secrets-0123456789',
    });
    const url = await service.url;
    const auth = { authorization: 'Bearer key-secrets-0123456789' };
    s3.failWhen((r) => r.method === 'PUT');
    expectError(await upload(url, speechFixture().mp3, {}, auth), 503, 'SERVER_BUSY', { resource: 'object_store' });
    s3.failWhen(null);
    // The bucket is the operator's to read (the metrics token), not a tenant's (its key).
    const tenant = await (await fetch(`${url}/health`, { headers: auth })).text();
    expect(tenant).toContain('object_store');
    expect(tenant).not.toContain(s3.bucket);
    const health = await (
      await fetch(`${url}/health`, { headers: { authorization: 'Bearer token-secrets-0123456789' } })
    ).text();
    expect(health).toContain(`s3://${s3.bucket}/cs/`);
    const log = service.lines.join('\n');
    expect(log).toContain('object store: storing the upload failed');
    for (const text of [health, log]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('S3RVER');
    }
  });

  it('refused credentials stop the start with a message that names the bucket, not the key', async () => {
    const service = await spawn({ AWS_ACCESS_KEY_ID: REFUSED_KEY_ID });
    await expect(service.url).rejects.toThrow(/exited before it listened/);
    const log = service.lines.join('\n');
    expect(log).toMatch(/object store s3:\/\/chunkscribe-test\/cs\/: object store head bucket: auth/);
    expect(log).not.toContain(REFUSED_KEY_ID);
    expect(log).not.toContain(SECRET);
  });
});
