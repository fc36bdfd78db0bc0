import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, type TestServer } from '../helper.ts';
import { expectError, expectNothingLeft, multipart, postMultipart } from './hostile-kit.ts';

const speech = speechFixture();

describe('upload file names on POST /v1/jobs', () => {
  let server: TestServer;
  let audio: Buffer;

  beforeAll(async () => {
    server = await startServer({ TRANSCRIBE_PROVIDER: 'local' });
    audio = readFileSync(speech.mp3);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(server?.dataDir ?? '');
  });

  /** The name a dry run answers for an upload named `filename`. */
  async function storedName(filename: string): Promise<string> {
    const form = multipart([
      { name: 'file', filename, contentType: 'audio/mpeg', data: audio },
      { name: 'dry_run', data: 'true' },
    ]);
    const res = await postMultipart(server, form);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as unknown as { audio: { filename: string } }).audio.filename;
  }

  it('keeps a name of up to 255 UTF-8 bytes whole', async () => {
    const name = `${'é'.repeat(125)}.mp3`;
    expect(Buffer.byteLength(name)).toBe(254);
    expect(await storedName(name)).toBe(name);
  });

  it('cuts a longer name to 255 bytes on a character boundary, keeping its extension', async () => {
    // 3-byte characters: 83 of them and ".mp3" take 253 bytes, an 84th would pass 255.
    const cjk = await storedName(`${'录'.repeat(200)}.mp3`);
    expect(cjk).toBe(`${'录'.repeat(83)}.mp3`);
    // Surrogate pairs (4 bytes each): 62 and ".mp3" take 252 bytes; a cut never leaves half a pair.
    const emoji = await storedName(`${'🎙'.repeat(100)}.mp3`);
    expect(emoji).toBe(`${'🎙'.repeat(62)}.mp3`);
    // Lone surrogates would not survive a trip through UTF-8.
    expect(Buffer.from(emoji, 'utf8').toString('utf8')).toBe(emoji);
    // No extension to keep: the start of the name, whole characters only.
    const plain = await storedName(`ab${'ü'.repeat(400)}`);
    expect(plain).toBe(`ab${'ü'.repeat(126)}`);
    for (const name of [cjk, emoji, plain]) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
  });

  it('refuses a 60,000-character name with 400 INVALID_FIELD, leaving nothing behind', async () => {
    const form = multipart([
      { name: 'file', filename: `${'a'.repeat(60_000)}.mp3`, contentType: 'audio/mpeg', data: audio },
    ]);
    const res = await postMultipart(server, form);
    expectError(res, 400, 'INVALID_FIELD', { field: 'filename', max_bytes: 1024 });
    expect(JSON.stringify(res.body).length).toBeLessThan(1000);
    await expectNothingLeft(server);
  });

  it('refuses a name just over 1 KiB, whose part header is read whole', async () => {
    const form = multipart([
      { name: 'file', filename: `${'b'.repeat(1021)}.mp3`, contentType: 'audio/mpeg', data: audio },
    ]);
    expectError(await postMultipart(server, form), 400, 'INVALID_FIELD', { field: 'filename' });
    await expectNothingLeft(server);
  });

  it('refuses a file part with a huge field name without echoing it whole', async () => {
    const form = multipart([
      { name: 'f'.repeat(60_000), filename: 'speech.mp3', contentType: 'audio/mpeg', data: audio },
    ]);
    const res = await postMultipart(server, form);
    expectError(res, 400, 'INVALID_FIELD');
    expect(JSON.stringify(res.body).length).toBeLessThan(1000);
    await expectNothingLeft(server);
  });
});
