import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, jobFiles, removeDir, startServer, upload, type TestServer } from '../helper.ts';
import { until } from '../support/until.ts';
import { expectError, expectNothingLeft, multipart, postChunked } from './hostile-kit.ts';

const speech = speechFixture();
const BOUNDARY = 'slowboundary';
const KEY_SLOW = 'key-slow-0123456789';
const KEY_GOOD = 'key-good-0123456789';
const SLOW = { authorization: `Bearer ${KEY_SLOW}` };
const GOOD = { authorization: `Bearer ${KEY_GOOD}` };
const METRICS_TOKEN = 'slow-metrics-token-0123456789';
/** The pool's detail is the operator's: the metrics token reads it. */
const OPERATOR = { authorization: `Bearer ${METRICS_TOKEN}` };
/** Two keys, and no pace checks: nothing is refused for slowness, so drippers hold their slots for the whole test. */
const KEYED = {
  API_KEYS: `${KEY_SLOW},${KEY_GOOD}`,
  METRICS_TOKEN,
  UPLOAD_MAX_GAP_MS: '0',
  UPLOAD_MIN_BYTES_PER_S: '0',
  PRESSURE_RETRY_AFTER_S: '13',
};

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * One upload over a raw node:net socket: the request head and the file part's header are sent at once (with a
 * Content-Length far beyond what is sent), then the body only as fast as the test drips it.
 */
class SlowUpload {
  readonly socket: net.Socket;
  /** The server's answer, once it has been read whole. */
  readonly answer: Promise<RawAnswer>;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(server: TestServer, headers: Record<string, string> = {}, contentLength = 10 * 1024 * 1024) {
    const { port } = new URL(server.url);
    this.socket = net.connect(Number(port), '127.0.0.1');
    // Writes after the server has closed fail with EPIPE or ECONNRESET: that is the point of closing, not a failure.
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.answer = new Promise((resolve, reject) => {
      let got = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        const end = got.indexOf('\r\n\r\n');
        if (end === -1) return;
        const [statusLine = '', ...lines] = got.subarray(0, end).toString('latin1').split('\r\n');
        const head = Object.fromEntries(
          lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
        );
        const length = Number(head['content-length']);
        if (got.length < end + 4 + length) return;
        this.socket.off('data', onData);
        resolve({
          status: Number(statusLine.split(' ')[1]),
          headers: head,
          body: JSON.parse(got.subarray(end + 4, end + 4 + length).toString('utf8')),
        });
      };
      this.socket.on('data', onData);
      this.socket.once('close', () =>
        reject(new Error(`connection closed before a whole answer (${got.length} bytes read)`)),
      );
    });
    // A socket the test closes itself never gets its answer: a failure only where the test awaits the answer.
    this.answer.catch(() => undefined);
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    this.socket.write(
      `POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        `Content-Length: ${contentLength}\r\n${extra}\r\n` +
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n`,
    );
  }

  /** Sends `bytes` bytes every `everyMs` until stopped or the server answers. */
  drip(bytes: number, everyMs: number): this {
    this.#timer = setInterval(() => {
      if (this.socket.writable) this.socket.write(Buffer.alloc(bytes, 0x41));
    }, everyMs);
    void this.answer.finally(() => this.stop()).catch(() => undefined);
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  destroy(): void {
    this.stop();
    this.socket.destroy();
  }
}

/** `promise`, or a failure naming what was awaited when it has not settled in `ms` (a bound, not a measurement). */
async function within<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${ms} ms for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pool's line in /health/ready (with API keys set, only the metrics token sees it). */
const poolDetail = async (server: TestServer, headers: Record<string, string> = {}): Promise<string> =>
  (await getJson<{ components: Record<string, { detail: string }> }>(`${server.url}/health/ready`, headers)).body
    .components.job_dirs!.detail;

describe('slow uploads lose their job directory lease', () => {
  let server: TestServer | undefined;
  const sockets: SlowUpload[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const s of sockets.splice(0)) s.destroy();
    await server?.close();
    await removeDir(server?.dataDir ?? '');
    server = undefined;
  });

  const open = (s: TestServer, headers?: Record<string, string>, contentLength?: number): SlowUpload => {
    const upload = new SlowUpload(s, headers, contentLength);
    sockets.push(upload);
    return upload;
  };

  it('answers 408 UPLOAD_TOO_SLOW to uploads that trickle below the minimum rate, removes them at once, and takes a normal upload', async () => {
    // The gap limit is off: only the rate can refuse these, however slow the machine is.
    server = await startServer({
      JOB_DIRS_MAX: '2',
      UPLOAD_MAX_GAP_MS: '0',
      UPLOAD_MIN_BYTES_PER_S: '4096',
      UPLOAD_RATE_WINDOW_MS: '1000',
    });
    const s = server;
    const tricklers = [open(s).drip(1, 50), open(s).drip(1, 50)];
    for (const t of tricklers) {
      const answer = await within(t.answer, 'the answer to a trickling upload');
      expectError(answer, 408, 'UPLOAD_TOO_SLOW', { reason: 'too_slow' });
      expect(answer.headers.connection).toBe('close');
      await within(t.closed, "the server to close a trickling upload's connection");
    }
    // The answer comes after the partial upload was removed and the lease returned.
    expect(await jobFiles(s.dataDir)).toEqual([]);
    expect(await poolDetail(s)).toMatch(/^0 of 2 leased/);

    const normal = await upload(s.url, speech.mp3, { dry_run: 'true' });
    expect(normal.status).toBe(200);
    await expectNothingLeft(s);
  });

  it('answers 408 UPLOAD_TOO_SLOW to bursts below the minimum rate: the pause a burst causes earns no credit', async () => {
    // 256 KiB every 2.5 s is ~105 kB/s, half the minimum. Each burst is larger than the parser's buffers, so the
    // server pauses the body while it writes it. The gap limit is off: only the rate can refuse this.
    server = await startServer({
      UPLOAD_MAX_GAP_MS: '0',
      UPLOAD_MIN_BYTES_PER_S: '200000',
      UPLOAD_RATE_WINDOW_MS: '4000',
    });
    const bursts = open(server).drip(256 * 1024, 2_500);
    const answer = await within(bursts.answer, 'the answer to an upload sent in bursts below the minimum rate');
    expectError(answer, 408, 'UPLOAD_TOO_SLOW', { reason: 'too_slow' });
    await within(bursts.closed, "the server to close the bursting upload's connection");
    await expectNothingLeft(server);
  });

  it('answers 408 to an upload that stops sending once the gap limit passes, between parts as well as inside the file', async () => {
    server = await startServer({ JOB_DIRS_MAX: '2', UPLOAD_MAX_GAP_MS: '1000', UPLOAD_MIN_BYTES_PER_S: '0' });
    const s = server;
    // Stalls inside the file part: nothing after its header.
    const inFile = open(s);
    // Stalls between parts: a whole field, then nothing.
    const betweenParts = new SlowUpload(s);
    sockets.push(betweenParts);
    betweenParts.socket.write(`x\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n`);

    for (const stalled of [inFile, betweenParts]) {
      const answer = await within(stalled.answer, 'the answer to a stalled upload');
      expectError(answer, 408, 'UPLOAD_TOO_SLOW', { reason: 'stalled' });
      expect((answer.body as { error: { details: { idle_ms: number } } }).error.details.idle_ms).toBeGreaterThanOrEqual(
        1000,
      );
      await within(stalled.closed, "the server to close a stalled upload's connection");
    }
    expect(await poolDetail(s)).toMatch(/^0 of 2 leased/);
    await expectNothingLeft(s);
  });

  it.each([
    ['back', -3_600_000],
    ['forward', 3_600_000],
  ])('judges the gap on its own clock when the wall clock steps %s an hour mid-upload', async (_, stepMs) => {
    server = await startServer({ JOB_DIRS_MAX: '2', UPLOAD_MAX_GAP_MS: '1000', UPLOAD_MIN_BYTES_PER_S: '0' });
    const s = server;
    const stalled = open(s);
    // The step comes once the server holds the upload (and watches it).
    await until(async () => /^1 of 2 leased/.test(await poolDetail(s)), 'the upload to hold a lease');
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() + stepMs);
    // Back: on the wall clock the gap stayed negative for an hour, holding the lease. Forward: the next byte found
    // an hour's gap and refused an upload that was keeping up; here none comes, so the answer is the stall's.
    const answer = await within(stalled.answer, 'the answer to a stalled upload');
    expectError(answer, 408, 'UPLOAD_TOO_SLOW', { reason: 'stalled' });
    expect((answer.body as { error: { details: { idle_ms: number } } }).error.details.idle_ms).toBeLessThan(600_000);
    await within(stalled.closed, "the server to close a stalled upload's connection");
    expect(await poolDetail(server)).toMatch(/^0 of 2 leased/);
  });

  it('bounds the uploads one key has in progress with 429 RATE_LIMITED, so another key gets in while it drips', async () => {
    server = await startServer({ ...KEYED, JOB_DIRS_MAX: '3', UPLOADS_PER_KEY_MAX: '2' });
    const s = server;
    const [slow, good] = [SLOW, GOOD];
    open(s, slow).drip(1, 200);
    open(s, slow).drip(1, 200);
    await until(
      async () => (await poolDetail(s, OPERATOR)).startsWith('2 of 3 leased'),
      'both drippers to hold a lease',
      {
        everyMs: 50,
      },
    );

    const third = await upload(s.url, speech.mp3, { dry_run: 'true' }, slow);
    expectError(third, 429, 'RATE_LIMITED', { reason: 'concurrent_uploads', limit: 2 });
    expect(third.headers.get('retry-after')).toBe('13');

    const other = await upload(s.url, speech.mp3, { dry_run: 'true' }, good);
    expect(other.status).toBe(200);
    expect(await poolDetail(s, OPERATOR)).toMatch(/^2 of 3 leased/);

    // A slot comes back when its upload ends: the slow key's third upload gets in once one dripper gives up.
    sockets[0]!.destroy();
    await until(
      async () => (await poolDetail(s, OPERATOR)).startsWith('1 of 3 leased'),
      'the closed dripper to lose its lease',
      { everyMs: 50 },
    );
    const again = await upload(s.url, speech.mp3, { dry_run: 'true' }, slow);
    expect(again.status).toBe(200);
  });

  it("bounds the bytes one key's uploads in progress reserve with 429 RATE_LIMITED, declared or as a chunked body arrives", async () => {
    const MiB = 1024 * 1024;
    server = await startServer({
      ...KEYED,
      MAX_UPLOAD_BYTES: String(2 * MiB),
      UPLOAD_BYTES_PER_KEY_MAX: String(3 * MiB),
      JOB_DIRS_MAX_BYTES: String(16 * MiB),
      UPLOADS_PER_KEY_MAX: '4',
    });
    const s = server;
    const [slow, good] = [SLOW, GOOD];
    // Declares the largest upload allowed and sends nothing more: it reserves 2 of the key's 3 MiB.
    open(s, slow, 2 * MiB);
    await until(
      async () => (await poolDetail(s, OPERATOR)).startsWith('1 of 16 leased'),
      'the first upload to hold a lease',
      { everyMs: 50 },
    );

    // A second declared 2 MiB is refused before its body is read: none of it was sent.
    const declared = open(s, slow, 2 * MiB);
    const answer = await within(declared.answer, 'the answer to an upload declaring more bytes than the key has left');
    expectError(answer, 429, 'RATE_LIMITED', { reason: 'concurrent_upload_bytes', limit_bytes: 3 * MiB });
    expect(answer.headers['retry-after']).toBe('13');

    // Another key is not affected, and the same key still gets in with what it has left.
    expect((await upload(s.url, speech.mp3, { dry_run: 'true' }, good)).status).toBe(200);
    expect((await upload(s.url, speech.mp3, { dry_run: 'true' }, slow)).status).toBe(200);

    // A chunked body has no length to check up front: it is refused once what arrived passes the 1 MiB left.
    const chunked = await postChunked(
      s,
      multipart([
        { name: 'file', filename: 'big.mp3', contentType: 'audio/mpeg', data: Buffer.alloc(1.5 * MiB, 0x41) },
      ]),
      slow,
    );
    expectError(chunked, 429, 'RATE_LIMITED', { reason: 'concurrent_upload_bytes', limit_bytes: 3 * MiB });
    expect(chunked.headers.get('retry-after')).toBe('13');

    // Only the first upload holds anything; once it goes, nothing is left.
    expect(await poolDetail(s, OPERATOR)).toMatch(/^1 of 16 leased/);
    sockets[0]!.destroy();
    await until(
      async () => (await poolDetail(s, OPERATOR)).startsWith('0 of 16 leased'),
      'the closed upload to lose its lease',
      { everyMs: 50 },
    );
    expect(await jobFiles(s.dataDir)).toEqual([]);
    expect((await upload(s.url, speech.mp3, { dry_run: 'true' }, slow)).status).toBe(200);
  });
});
