import { execFile } from 'node:child_process';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_STATUS, isErrorCode } from '../../src/errors.ts';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, type TestServer } from '../helper.ts';
import { NETWORK_ATTEMPT_MARK } from '../support/no-network-mark.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const NO_NETWORK = path.join(ROOT, 'test/support/no-network.ts');
const REDOCLY = path.join(ROOT, 'node_modules/@redocly/cli/bin/cli.js');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
const KEY = 'openapi-client-key-0123456789';
const METRICS_TOKEN = 'openapi-metrics-token-0123';

type Json = Record<string, unknown>;
interface Media {
  schema?: Json;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string; required?: boolean; schema: Json }>;
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
}
interface Document {
  servers?: Array<{ url: string }>;
  info: { license?: { name: string } };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}

const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([p, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ name: `${method.toUpperCase()} ${p}`, p, op })),
  );

/**
 * The recommended rules, every one met: even the health probes have a client error to document, the 429 of an
 * address locked out after failed credentials (AUTH_FAILURES_PER_MINUTE).
 */
const REDOCLY_CONFIG = 'extends:\n  - recommended\ntelemetry: off\n';
/**
 * A client written against the generated types only. tsc checks it (the @ts-expect-error lines prove the types
 * are precise: each must be an error), then it runs one job: upload, poll to the end, transcript, listing.
 */
const CLIENT = `import { openAsBlob } from 'node:fs';
import createClient from 'openapi-fetch';
import type { components, paths } from './api.ts';

type Job = components['schemas']['JobResource'];
const [baseUrl, key, audio] = process.argv.slice(2) as [string, string, string];
// JSON bodies: the transcript route also answers text/plain, x-subrip and vtt, read below with parseAs: 'text'.
const client = createClient<paths, 'application/json'>({ baseUrl, headers: { authorization: \`Bearer \${key}\` } });

const created = await client.POST('/v1/jobs', {
  body: { file: await openAsBlob(audio), language: 'en' },
  bodySerializer(body) {
    const form = new FormData();
    for (const [name, value] of Object.entries(body)) {
      if (value instanceof Blob) form.append(name, value, 'speech.wav');
      else if (typeof value === 'string') form.append(name, value);
    }
    return form;
  },
});
if (created.error) throw new Error(\`upload: \${created.error.error.code} \${created.error.error.message}\`);
// The status says which success body came (202 a job, 200 a dry-run estimate); the types cannot.
if (created.response.status !== 202) throw new Error(\`upload: \${created.response.status}, not 202\`);
const id = (created.data as Job).id;

let job: Job | undefined;
const POLLS = 600;
for (let i = 0; i < POLLS && !(job && ['completed', 'failed', 'cancelled'].includes(job.status)); i++) {
  if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
  const polled = await client.GET('/v1/jobs/{id}', { params: { path: { id } } });
  if (polled.error) throw new Error(\`poll: \${polled.error.error.code}\`);
  job = polled.data;
}
if (!job || job.status !== 'completed') throw new Error(\`job \${id} did not complete within \${POLLS} polls: \${JSON.stringify(job)}\`);

// format is optional: the server's default is json.
const transcript = await client.GET('/v1/jobs/{id}/transcript', { params: { path: { id } } });
if (transcript.error) throw new Error(\`transcript: \${transcript.error.error.code}\`);
const srt = await client.GET('/v1/jobs/{id}/transcript', { params: { path: { id }, query: { format: 'srt' } }, parseAs: 'text' });
const listed = await client.GET('/v1/jobs');
if (listed.error) throw new Error(\`list: \${listed.error.error.code}\`);
const missing = await client.GET('/v1/jobs/{id}', { params: { path: { id: 'job_0000000000000000000000' } } });

process.stdout.write(JSON.stringify({
  id,
  status: job.status,
  chunks: job.progress.chunks_total,
  text: transcript.data.text,
  segments: transcript.data.segments.length,
  timing: transcript.data.timing ?? null,
  srt: srt.data ?? null,
  listed: listed.data.items.map((item) => item.id),
  missing: { status: missing.response.status, code: missing.error?.error.code ?? null },
}));

export function typesHaveTeeth(): void {
  // @ts-expect-error: docx is not a transcript format
  void client.GET('/v1/jobs/{id}/transcript', { params: { path: { id }, query: { format: 'docx' } } });
  // @ts-expect-error: the job id is a path parameter that must be given
  void client.GET('/v1/jobs/{id}', {});
  // @ts-expect-error: no such route
  void client.GET('/v1/transcripts');
  // @ts-expect-error: a job's status is one of the documented ones
  const done: Job['status'] = 'done';
  void done;
}
`;

const CLIENT_TSCONFIG = {
  compilerOptions: {
    target: 'ES2023',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023', 'DOM'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
  },
  files: ['client.ts'],
};

describe('the OpenAPI document', () => {
  let fake: FakeOpenAI;
  let keyed: TestServer;
  let open: TestServer;
  let doc: Document;
  let work: string;
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI({ latencyMs: 0 });
    keyed = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      API_KEYS: KEY,
      METRICS_TOKEN,
      RATE_LIMIT_RPM: '6000',
    });
    open = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
    const served = await getJson<Document>(`${keyed.url}/docs/json`);
    expect(served.status).toBe(200);
    doc = served.body;
    work = await mkdtemp(path.join(os.tmpdir(), 'cs-openapi-'));
    // The generated client resolves openapi-fetch, typescript and @types/node from the project.
    await symlink(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'), 'dir');
  });
  afterAll(async () => {
    await keyed?.close();
    await open?.close();
    await fake?.close();
    for (const dir of [keyed?.dataDir, open?.dataDir, work]) if (dir) await removeDir(dir);
  });

  it('is the same whatever the server is configured with (keys, metrics token, engine)', async () => {
    const other = await getJson<Document>(`${open.url}/docs/json`);
    expect(other.status).toBe(200);
    expect(other.body).toEqual(doc);
  });

  it('passes `redocly lint` with the recommended rules, run offline', async () => {
    await writeFile(path.join(work, 'openapi.json'), JSON.stringify(doc, null, 2));
    await writeFile(path.join(work, 'redocly.yaml'), REDOCLY_CONFIG);
    const args = [
      '--experimental-strip-types',
      '--import',
      NO_NETWORK,
      REDOCLY,
      'lint',
      'openapi.json',
      '--config',
      'redocly.yaml',
      '--format',
      'json',
    ];
    // HOME is the temp dir: nothing the tool caches lands in the real one.
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: work,
      REDOCLY_TELEMETRY: 'off',
      REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
    };
    const result = await run(process.execPath, args, { cwd: work, env, maxBuffer: 16 * 1024 * 1024 }).catch(
      (err: { stdout: string; stderr: string; code: number }) => err,
    );
    expect(result.stderr).not.toContain(NETWORK_ATTEMPT_MARK);
    const report = JSON.parse(result.stdout) as {
      totals: { errors: number; warnings: number; ignored: number };
      problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }>;
    };
    const problems = report.problems.map(
      (p) => `${p.ruleId} at ${p.location.map((l) => l.pointer).join(', ')}: ${p.message}`,
    );
    expect(problems).toEqual([]);
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
    expect('code' in result ? result.code : 0).toBe(0);
  });

  it('names and secures every operation, and shows an example of every body', () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    expect(doc.info.license?.name).toBe('MIT');
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThanOrEqual(9);
    const ids = ops.map((o) => o.op.operationId);
    expect(new Set(ids).size, 'unique operationIds').toBe(ops.length);
    for (const { name, p, op } of ops) {
      expect(op.operationId, name).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.security, name).toBeDefined();
      // Under /v1 a key is needed (whatever the server runs with); elsewhere every route also answers without one.
      if (p.startsWith('/v1/')) expect(op.security, name).toEqual([{ bearer: [] }]);
      else expect(op.security!.length === 0 || op.security!.some((r) => Object.keys(r).length === 0), name).toBe(true);

      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        expect(media.example ?? media.examples, `${name} request ${type}`).toBeDefined();
      }
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.description, `${name} ${status}`).not.toBe('Default Response');
        for (const [type, media] of Object.entries(response.content ?? {})) {
          expect(media.example ?? media.examples, `${name} ${status} ${type}`).toBeDefined();
        }
        if (
          Number(status) < 400 ||
          response.content?.['application/json']?.schema?.$ref !== '#/components/schemas/ErrorBody'
        )
          continue;
        // An error response names its codes; each has an example carrying it, and each belongs to this status.
        const codes = /^Error: (.+)$/.exec(response.description)?.[1]?.split(', ') ?? [];
        expect(codes.length, `${name} ${status} names its codes`).toBeGreaterThan(0);
        const examples = response.content?.['application/json']?.examples ?? {};
        expect(Object.keys(examples).sort(), `${name} ${status}`).toEqual([...codes].sort());
        for (const code of codes) {
          expect(isErrorCode(code) && ERROR_STATUS[code], `${name} ${code}`).toBe(Number(status));
          expect(examples[code]?.value, `${name} ${code}`).toMatchObject({ error: { code } });
        }
      }
    }
    const byId: Record<string, Operation> = Object.fromEntries(ops.map((o) => [o.op.operationId ?? o.name, o.op]));
    // Upload refusals seen before any job exists, the provider's included.
    expect(Object.keys(byId.createJob?.responses ?? {})).toEqual(
      expect.arrayContaining(['400', '401', '413', '415', '422', '429', '502', '503', '507']),
    );
    expect(byId.createJob?.responses['502']?.description).toContain('PROVIDER_AUTH');
    // A parameter with a default may be left out.
    for (const [id, param] of [
      ['getTranscript', 'format'],
      ['listJobs', 'limit'],
    ] as const) {
      expect(byId[id]?.parameters?.find((p) => p.name === param)?.required, `${id} ${param}`).toBe(false);
    }
    const transcript = byId.getTranscript?.responses['200']?.content?.['application/json']?.schema as {
      properties: Json;
    };
    expect(Object.keys(transcript.properties)).toContain('timing');
  });

  it('generates a typed client that typechecks and runs a job end to end against the service', async () => {
    const ast = await openapiTS(JSON.stringify(doc), {
      silent: true,
      // format: binary is a file to upload: a Blob, as FormData takes it.
      transform: (schema) => (schema.format === 'binary' ? ts.factory.createTypeReferenceNode('Blob') : undefined),
    });
    await writeFile(path.join(work, 'api.ts'), astToString(ast));
    await writeFile(path.join(work, 'client.ts'), CLIENT);
    await writeFile(path.join(work, 'tsconfig.json'), JSON.stringify(CLIENT_TSCONFIG));
    await writeFile(path.join(work, 'package.json'), JSON.stringify({ type: 'module', private: true }));

    const checked = await run(process.execPath, [TSC, '-p', path.join(work, 'tsconfig.json')], { cwd: work }).catch(
      (err: { stdout: string; code: number }) => err,
    );
    expect(checked.stdout, 'tsc output').toBe('');
    expect('code' in checked ? checked.code : 0).toBe(0);

    const ran = await run(
      process.execPath,
      ['--experimental-strip-types', path.join(work, 'client.ts'), keyed.url, KEY, speech.wav],
      {
        cwd: work,
        env: { PATH: process.env.PATH ?? '' },
      },
    );
    const result = JSON.parse(ran.stdout) as {
      id: string;
      status: string;
      chunks: number;
      text: string;
      segments: number;
      timing: string | null;
      srt: string | null;
      listed: string[];
      missing: { status: number; code: string | null };
    };
    expect(result.status).toBe('completed');
    expect(result.chunks).toBeGreaterThanOrEqual(3);
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.segments).toBeGreaterThan(0);
    expect(result.timing).toBe('segment');
    expect(result.srt).toMatch(/^1\n\d{2}:\d{2}:\d{2},\d{3} --> /);
    expect(result.listed).toContain(result.id);
    expect(result.missing).toEqual({ status: 404, code: 'NOT_FOUND' });
    // The job is the service's own: the same key sees it over plain HTTP.
    const job = await getJson<{ status: string }>(`${keyed.url}/v1/jobs/${result.id}`, {
      authorization: `Bearer ${KEY}`,
    });
    expect(job.body.status).toBe('completed');
  });
});
