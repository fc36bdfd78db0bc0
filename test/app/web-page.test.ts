import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { getJson, removeDir, startServer, upload, type TestServer } from '../helper.ts';
import { heldJobEnv, startHeldFakeOpenAI, type Hold } from '../support/held-fake-openai.ts';

const CHROMIUM = '/usr/bin/chromium';
// Headless and off the network: no updates, no sync, no background fetches, no QUIC probes.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const RESULTS = path.resolve(import.meta.dirname, '../.results');

async function launch(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1000, height: 1100 },
  });
}

async function startWithPage(env: Record<string, string>): Promise<TestServer> {
  const server = await startServer(env);
  const res = await fetch(`${server.url}/`);
  if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/html')) {
    await server.close();
    await removeDir(server.dataDir);
    throw new Error(`GET / answered ${res.status}: register src/http/routes/web.ts in src/http/app.ts`);
  }
  return server;
}

async function openPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('body[data-ready="true"]').waitFor();
  return page;
}

describe('the upload page in headless Chromium', () => {
  const speech = speechFixture();
  let server: TestServer;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    server = await startWithPage({ TRANSCRIBE_PROVIDER: 'local', CHUNK_SECONDS: '10' });
    userDataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-chromium-'));
    context = await launch(userDataDir);
    await mkdir(RESULTS, { recursive: true });
  });
  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (server) await removeDir(server.dataDir);
    if (userDataDir) await removeDir(userDataDir);
  });

  // Generous bounds: pocketsphinx on 2 shared cores can be slow when other suites run beside this one.
  it(
    'uploads a recording, follows it to completion, shows the timed transcript and downloads an SRT',
    { timeout: 300_000 },
    async () => {
      const page = await openPage(context, server.url);
      const consoleErrors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });

      // Every form control is labelled: a screen reader can name each one.
      // (Page scripts are strings: this project's tsconfig has no DOM types.)
      const unlabelled = await page.evaluate<string[]>(
        "[...document.querySelectorAll('input, textarea, select')].filter((el) => el.labels.length === 0).map((el) => el.id)",
      );
      expect(unlabelled).toEqual([]);
      expect(await page.getAttribute('#job-status', 'aria-live')).toBe('polite');

      // Every text the live region announces, to check the page showed progress while the job ran.
      await page.evaluate(`{
      const region = document.getElementById('job-status');
      window.announced = [];
      new MutationObserver(() => window.announced.push(region.textContent)).observe(region, { childList: true, characterData: true, subtree: true });
    }`);

      await page.setInputFiles('#file', speech.wav);
      await page.getByText('Options').click();
      await page.getByLabel(/^Language/).fill('en');
      await page.getByRole('button', { name: 'Upload and transcribe' }).click();

      await page.locator('#job-section').waitFor({ timeout: 60_000 });
      // The job section opens once the upload is answered; the upload bar is full by then.
      expect(await page.getAttribute('#upload-progress', 'value')).toBe('100');
      expect(await page.textContent('#upload-text')).toBe('Uploaded speech.wav.');
      await page.locator('#job-status', { hasText: 'transcribing' }).waitFor({ timeout: 200_000 });
      await page.screenshot({ path: path.join(RESULTS, 'web-page-progress.png') });
      await page.locator('#job-section[data-status="completed"]').waitFor({ timeout: 250_000 });
      await page.locator('#transcript-section').waitFor();

      expect(await page.textContent('#job-status')).toMatch(/^Completed\. (\d+) of \1 chunks done\.$/);
      const announced = await page.evaluate<string[]>('window.announced');
      expect(announced.some((t) => /^Processing: transcribing\. \d+ of [1-9]\d* chunks done\.$/.test(t))).toBe(true);
      expect(new Set(announced).size).toBe(announced.length);
      const segments = page.locator('#segments li');
      expect(await segments.count()).toBeGreaterThan(3);
      const firstTime = await segments.first().locator('.ts').textContent();
      expect(firstTime).toMatch(/^\d{2}:\d{2}–\d{2}:\d{2}$/);
      expect((await page.textContent('#segments'))!.toLowerCase()).toMatch(/\b(selfish|respectable)\b/);

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: 'Subtitles (.srt)' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe('speech.srt');
      const srt = await readFile((await download.path())!, 'utf8');
      const cues = [...srt.matchAll(/^\d+\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n\S.*$/gm)];
      expect(cues.length).toBeGreaterThan(3);
      expect(srt.toLowerCase()).toMatch(/\b(selfish|respectable)\b/);

      const jobId = (await page.textContent('#job-id'))!;
      const row = page.locator(`#jobs-body tr[data-job-id="${jobId}"]`);
      await expect.poll(() => row.locator('td').nth(1).textContent(), { timeout: 30_000 }).toBe('completed');

      await page.screenshot({ path: path.join(RESULTS, 'web-page.png'), fullPage: true });
      expect(consoleErrors).toEqual([]);
      await page.close();
    },
  );

  it('shows the service error in words when a text file is uploaded', async () => {
    const expected = await upload(server.url, new Blob(['meeting notes, not audio\n']));
    expect(expected.body.error.code).toBe('UNSUPPORTED_MEDIA');

    const page = await openPage(context, server.url);
    await page.setInputFiles('#file', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('meeting notes, not audio\n'),
    });
    await page.getByRole('button', { name: 'Upload and transcribe' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain(expected.body.error.message);
    expect(await alert.textContent()).toContain('UNSUPPORTED_MEDIA');
    expect(await page.locator('#job-section').isHidden()).toBe(true);
    await page.screenshot({ path: path.join(RESULTS, 'web-page-error.png') });
    await page.close();
  });

  it('cancels a running job from the recent jobs list', async () => {
    const created = await upload(server.url, speech.mp3);
    expect(created.status).toBe(202);
    const page = await openPage(context, server.url);
    page.on('dialog', (dialog) => void dialog.accept());
    const row = page.locator(`#jobs-body tr[data-job-id="${created.body.id}"]`);
    await row.waitFor();
    // Keyboard only: focus the row's button and press Enter.
    await row.getByRole('button', { name: /^(Cancel|Delete) the job for speech\.mp3$/ }).focus();
    await page.keyboard.press('Enter');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#jobs-message')).toMatch(/^(Cancelled|Deleted) the job for speech\.mp3\.$/);
    expect((await getJson(`${server.url}/v1/jobs/${created.body.id}`)).status).toBe(404);
    await page.close();
  });
});

describe('the upload page with API keys', () => {
  let server: TestServer;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    server = await startWithPage({ TRANSCRIBE_PROVIDER: 'local', API_KEYS: 'page-key' });
    userDataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-chromium-'));
    context = await launch(userDataDir);
  });
  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (server) await removeDir(server.dataDir);
    if (userDataDir) await removeDir(userDataDir);
  });

  it('asks for the key, keeps it in session storage and sends it as a bearer token', async () => {
    const page = await openPage(context, server.url);
    await expect.poll(() => page.textContent('#jobs-message'), { timeout: 30_000 }).toMatch(/API key/);

    await page.getByLabel(/^Key/).fill('page-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await expect.poll(() => page.textContent('#jobs-message'), { timeout: 30_000 }).toBe('No jobs yet.');
    expect(await page.evaluate<string | null>("sessionStorage.getItem('chunkscribe.apiKey')")).toBe('page-key');

    // The upload goes through XHR: with the key it reaches media validation instead of stopping at 401.
    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();
    expect(await page.textContent('#key-status')).toBe('A key is set for this tab.');
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not audio') });
    await page.getByRole('button', { name: 'Upload and transcribe' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('UNSUPPORTED_MEDIA');
    await page.close();
  });
});

describe('the upload page following a job live', () => {
  const speech = speechFixture();
  let server: TestServer;
  let fake: FakeOpenAI;
  let context: BrowserContext;
  let userDataDir: string;
  // Chunk 0 is answered; every later one waits while hold.on.
  let hold: Hold;

  beforeAll(async () => {
    ({ fake, hold } = await startHeldFakeOpenAI());
    server = await startWithPage({ ...heldJobEnv(fake), API_KEYS: 'page-key' });
    userDataDir = await mkdtemp(path.join(os.tmpdir(), 'cs-chromium-'));
    context = await launch(userDataDir);
  });
  afterAll(async () => {
    await context?.close();
    await server?.close();
    await fake?.close();
    if (server) await removeDir(server.dataDir);
    if (userDataDir) await removeDir(userDataDir);
  });

  it('shows each chunk’s text while the job still runs, from the event stream sent with the key', async () => {
    const key = { authorization: 'Bearer page-key' };
    const created = await upload(server.url, speech.mp3, {}, key);
    expect(created.status).toBe(202);
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await page.locator('body[data-ready="true"]').waitFor();
    await page.getByLabel(/^Key/).fill('page-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    const streams: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/events')) streams.push(r.headers().authorization ?? '');
    });
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    // A reload with the job in the address opens it (a hash change alone does not run the page again).
    await page.goto(`${server.url}/#${created.body.id}`);
    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();

    // The later chunks are held: text on the page now came from the stream while the job runs.
    await page.locator('#live-text', { hasText: /chunk-[0-9a-f]{8}-0/ }).waitFor({ timeout: 60_000 });
    expect(await page.getAttribute('#job-section', 'data-status')).toBe('processing');
    expect((await getJson<{ status: string }>(`${server.url}/v1/jobs/${created.body.id}`, key)).body.status).toBe(
      'processing',
    );
    expect(streams).toEqual(['Bearer page-key']);
    await page.screenshot({ path: path.join(RESULTS, 'web-page-live.png') });

    hold.on = false;
    await page.locator('#job-section[data-status="completed"]').waitFor({ timeout: 100_000 });
    await page.locator('#transcript-section').waitFor();
    const transcript = await getJson<{ text: string }>(`${server.url}/v1/jobs/${created.body.id}/transcript`, key);
    expect(await page.textContent('#live-text')).toBe(transcript.body.text);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });
});
