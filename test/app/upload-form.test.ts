import { mkdir, mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, waitForJob, type TestServer } from '../helper.ts';
import {
  expectError,
  expectNothingLeft,
  ffmpeg,
  multipart,
  postMultipart,
  type Part,
  type RawResponse,
} from './hostile-kit.ts';

/** Every file and directory under `root`, relative, sorted. */
async function tree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

describe('malformed forms and fields on POST /v1/jobs', () => {
  let server: TestServer;
  let root: string;
  let clip: Buffer;

  beforeAll(async () => {
    // DATA_DIR three levels down in a private temp dir: a path built from `../../x` would land inside `root`.
    root = await mkdtemp(path.join(os.tmpdir(), 'cs-form-'));
    const dataDir = path.join(root, 'a', 'b', 'data');
    await mkdir(dataDir, { recursive: true });
    const clipFile = path.join(root, 'clip.wav');
    ffmpeg(['-i', speechFixture().wav, '-t', '3', '-c:a', 'pcm_s16le', clipFile]);
    clip = await readFile(clipFile);
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local', MAX_DURATION_S: '60' }, dataDir);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(root);
  });

  const audio = (over: Partial<Part> = {}): Part => ({
    name: 'file',
    filename: 'clip.wav',
    contentType: 'audio/wav',
    data: clip,
    ...over,
  });
  const send = (...parts: Part[]): Promise<RawResponse> => postMultipart(server, multipart(parts));

  const cases: Array<{
    name: string;
    parts: () => Part[];
    status: number;
    code: string;
    details?: Record<string, unknown>;
  }> = [
    {
      name: 'a form with no file part',
      parts: () => [{ name: 'language', data: 'en' }],
      status: 400,
      code: 'FILE_MISSING',
    },
    { name: 'an empty form', parts: () => [], status: 400, code: 'FILE_MISSING' },
    {
      name: 'two file parts',
      parts: () => [audio(), audio({ filename: 'again.wav' })],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'file' },
    },
    {
      name: 'the file under another field name',
      parts: () => [audio({ name: 'audio' })],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'audio' },
    },
    {
      name: 'the file sent as a text field',
      parts: () => [{ name: 'file', data: 'not a file' }],
      status: 400,
      code: 'FILE_MISSING',
    },
    {
      name: 'an invalid language',
      parts: () => [audio(), { name: 'language', data: 'english' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'language' },
    },
    {
      name: 'an upper-case language',
      parts: () => [audio(), { name: 'language', data: 'EN' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'language' },
    },
    {
      name: 'metadata that is not JSON',
      parts: () => [audio(), { name: 'metadata', data: '{"ref": ' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'metadata' },
    },
    {
      name: 'metadata that is an array',
      parts: () => [audio(), { name: 'metadata', data: '[1,2,3]' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'metadata' },
    },
    {
      name: 'metadata over 16 KiB',
      parts: () => [audio(), { name: 'metadata', data: JSON.stringify({ blob: 'x'.repeat(16 * 1024) }) }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'metadata' },
    },
    {
      name: 'a loopback callback_url',
      parts: () => [audio(), { name: 'callback_url', data: 'http://127.0.0.1:8080/hook' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'callback_url' },
    },
    {
      name: 'an ftp callback_url',
      parts: () => [audio(), { name: 'callback_url', data: 'ftp://example.com/hook' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'callback_url' },
    },
    {
      name: 'an unknown field',
      parts: () => [audio(), { name: 'speaker', data: 'bob' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'speaker' },
    },
    {
      name: 'a field sent twice',
      parts: () => [audio(), { name: 'language', data: 'en' }, { name: 'language', data: 'de' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'language' },
    },
    {
      name: 'a field named __proto__',
      parts: () => [audio(), { name: '__proto__', data: '{}' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'form' },
    },
    {
      name: 'metadata declared application/json that is not JSON',
      parts: () => [audio(), { name: 'metadata', contentType: 'application/json', data: '{"ref": ' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'form' },
    },
    {
      name: 'a bad dry_run',
      parts: () => [audio(), { name: 'dry_run', data: 'maybe' }],
      status: 400,
      code: 'INVALID_FIELD',
      details: { field: 'dry_run' },
    },
  ];

  for (const c of cases) {
    it(`answers ${c.status} ${c.code} to ${c.name} and leaves nothing behind`, async () => {
      expectError(await send(...c.parts()), c.status, c.code, c.details);
      await expectNothingLeft(server);
    });
  }

  it('takes metadata sent as an application/json part as the JSON text it is', async () => {
    const res = await send(
      audio(),
      { name: 'metadata', contentType: 'application/json', data: '{"ref":"abc","n":[1,2]}' },
      { name: 'dry_run', data: 'true' },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await expectNothingLeft(server);
  });

  it('answers 400 FILE_MISSING to a JSON body and leaves nothing behind', async () => {
    const res = await fetch(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ file: 'aGVsbG8=', language: 'en' }),
    });
    expectError({ status: res.status, body: await res.json() }, 400, 'FILE_MISSING');
    await expectNothingLeft(server);
  });

  /** Bodies that are not well-formed multipart: "not multipart/form-data" in the README's words. */
  const rawBodies: Array<{ name: string; contentType: string; body: () => Buffer }> = [
    {
      name: 'a multipart content type without a boundary',
      contentType: 'multipart/form-data',
      body: () => Buffer.from('whatever'),
    },
    {
      name: 'a body cut off inside the file part',
      contentType: 'multipart/form-data; boundary=XyZ',
      body: () =>
        Buffer.concat([
          Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'),
          clip.subarray(0, 5000),
        ]),
    },
    {
      name: 'a body that never opens a part',
      contentType: 'multipart/form-data; boundary=XyZ',
      body: () => Buffer.from('no boundary line here at all\r\n'),
    },
    {
      name: 'a part without Content-Disposition',
      contentType: 'multipart/form-data; boundary=XyZ',
      body: () => Buffer.from('--XyZ\r\nContent-Type: audio/wav\r\n\r\nRIFF....\r\n--XyZ--\r\n'),
    },
    {
      name: 'a part header that never ends',
      contentType: 'multipart/form-data; boundary=XyZ',
      body: () =>
        Buffer.from(
          `--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nX-Pad: ${'a'.repeat(100_000)}`,
        ),
    },
  ];
  for (const c of rawBodies) {
    it(`answers 400 FILE_MISSING to ${c.name} and leaves nothing behind`, async () => {
      expectError(await postMultipart(server, { contentType: c.contentType, body: c.body() }), 400, 'FILE_MISSING');
      await expectNothingLeft(server);
    });
  }

  for (const filename of [
    '../../etc/passwd',
    '../../../../../../tmp/cs-evil ünï 录音 🎙.wav',
    'x/../../../y.wav',
    'Ünïcødé 录音 🎙.wav',
  ]) {
    it(`stores an upload named ${JSON.stringify(filename)} under its own name only`, async () => {
      const passwdBefore = await stat('/etc/passwd');
      const before = await tree(root);
      const res = await send(audio({ filename }));
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const id = res.body.id;
      const jobDir = `a/b/data/jobs/${id}`;
      const added = (await tree(root)).filter((f) => !before.includes(f));
      const outside = added.filter(
        (f) =>
          f !== jobDir && !f.startsWith(`${jobDir}/`) && !/^a\/b\/data\/jobs\.sqlite(-wal|-shm|-journal)?$/.test(f),
      );
      expect(outside).toEqual([]);
      expect(
        added
          .filter((f) => f.startsWith(`${jobDir}/`))
          .every((f) => /^(upload|chunks-\d+(\/chunk[-_\w.]*)?)$/.test(f.slice(jobDir.length + 1))),
      ).toBe(true);
      // What the client sent, or the part after its last slash (busboy drops directories); never a path.
      const stored = (res.body.audio as { filename: string }).filename;
      expect([filename, filename.split('/').pop()]).toContain(stored);

      const job = await waitForJob(server.url, id);
      expect(job.status).toBe('completed');
      const after = (await tree(root)).filter((f) => !before.includes(f));
      expect(
        after.filter((f) => f !== jobDir && !f.startsWith(`${jobDir}/`) && !f.startsWith('a/b/data/jobs.sqlite')),
      ).toEqual([]);
      expect(await readdir('/tmp').then((names) => names.filter((n) => n.startsWith('cs-evil')))).toEqual([]);
      expect((await stat('/etc/passwd')).mtimeMs).toBe(passwdBefore.mtimeMs);

      const del = await fetch(`${server.url}/v1/jobs/${id}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      await expectNothingLeft(server);
    });
  }
});
