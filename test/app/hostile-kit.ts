import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { expect } from 'vitest';
import { getJson, jobFiles, type ErrorJson, type JobJson, type TestServer } from '../helper.ts';

/** Shared by the hostile-upload tests: raw multipart bodies, raw HTTP senders, and the "nothing left" check. */

export const ERROR_CODES_4XX: ReadonlyMap<string, number> = new Map([
  ['FILE_MISSING', 400],
  ['INVALID_FIELD', 400],
  ['FILE_TOO_LARGE', 413],
  ['UNSUPPORTED_MEDIA', 415],
  ['MEDIA_CORRUPT', 422],
  ['DURATION_OUT_OF_RANGE', 422],
  ['BUDGET_EXCEEDED', 422],
]);

export function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

export interface Part {
  name: string;
  /** A file part when set (the raw string goes into the header: tests control it byte for byte). */
  filename?: string;
  contentType?: string;
  data: string | Buffer;
}

export interface Multipart {
  body: Buffer;
  contentType: string;
}

/** A multipart/form-data body built by hand, so tests can send what a browser never would. */
export function multipart(parts: Part[]): Multipart {
  const boundary = `----hostile${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += '\r\n';
    if (p.filename !== undefined || p.contentType !== undefined)
      head += `Content-Type: ${p.contentType ?? 'application/octet-stream'}\r\n`;
    chunks.push(
      Buffer.from(`${head}\r\n`, 'utf8'),
      Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data, 'utf8'),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: JobJson & ErrorJson;
}

/** POSTs a prepared multipart body to /v1/jobs with node:http (a fixed Content-Length). */
export function postMultipart(
  server: TestServer,
  form: Multipart,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': form.contentType, 'content-length': String(form.body.length), ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const got: Buffer[] = [];
      res.on('data', (c: Buffer) => got.push(c));
      res.on('error', reject);
      res.on('end', () => {
        try {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(Buffer.concat(got).toString('utf8')) as JobJson & ErrorJson,
          });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.end(form.body);
  });
}

/** POSTs a prepared multipart body to /v1/jobs as a stream, so without Content-Length (chunked), with fetch. */
export async function postChunked(
  server: TestServer,
  form: Multipart,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const pieces = [form.body];
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = pieces.shift();
      if (next) controller.enqueue(new Uint8Array(next));
      else controller.close();
    },
  });
  const res = await fetch(`${server.url}/v1/jobs`, {
    method: 'POST',
    headers: { ...headers, 'content-type': form.contentType },
    body,
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
}

/** The contract's error shape exactly: code, a message, optional details object, nothing else. */
export function expectError(
  res: { status: number; body: unknown },
  status: number,
  code: string,
  details?: Record<string, unknown>,
): void {
  const body = res.body as ErrorJson;
  expect({ status: res.status, code: body.error?.code }, JSON.stringify(body)).toEqual({ status, code });
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(
    body.error.details === undefined ? ['code', 'message'] : ['code', 'details', 'message'],
  );
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(10);
  if (body.error.details !== undefined) expect(typeof body.error.details).toBe('object');
  if (details) expect(body.error.details).toMatchObject(details);
}

/** Ids of every job the server lists (all pages). */
export async function listedJobIds(server: TestServer): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    // A cursor that never runs out would otherwise loop until the test timeout, saying nothing.
    expect(++pages, 'pages of GET /v1/jobs').toBeLessThanOrEqual(1000);
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const { status, body } = await getJson<{ items: Array<{ id: string }>; next_cursor: string | null }>(
      `${server.url}/v1/jobs?limit=100${q}`,
    );
    expect(status).toBe(200);
    ids.push(...body.items.map((j) => j.id));
    cursor = body.next_cursor;
  } while (cursor);
  return ids;
}

/**
 * After a refused upload: no file under DATA_DIR/jobs except those of `keep` jobs, no job row beyond `keep`,
 * and the server still ready.
 */
export async function expectNothingLeft(server: TestServer, keep: readonly string[] = []): Promise<void> {
  const leftovers = (await jobFiles(server.dataDir)).filter(
    (f) => !keep.some((id) => f === id || f.startsWith(`${id}/`)),
  );
  expect(leftovers).toEqual([]);
  expect((await listedJobIds(server)).sort()).toEqual([...keep].sort());
  const ready = await fetch(`${server.url}/health/ready`);
  expect(ready.status).toBe(200);
  await ready.body?.cancel();
}
