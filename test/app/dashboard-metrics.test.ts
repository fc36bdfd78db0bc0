/**
 * Every metric the Grafana dashboard and the Prometheus alert rules query exists in a scrape of the real service,
 * after it has done what the panels show: a job with a retried provider call and a webhook, and a refused upload.
 * A renamed metric, or a histogram queried by its bare name (it only has _bucket, _sum and _count series), fails here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FAKE_OPENAI_KEY, startFakeOpenAI, type FakeOpenAI } from '../fake-openai/server.ts';
import { speechFixture } from '../fixtures/speech.ts';
import { removeDir, startServer, upload, waitForJob, type TestServer } from '../helper.ts';
import { parsePromText, sumOf, type PromSample } from '../support/prom-text.ts';
import { metricNames } from '../support/promql-names.ts';
import { until } from '../support/until.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** Series Prometheus makes itself for every target, never in the service's answer. */
const PROMETHEUS_OWN = new Set(['up']);

function dashboardQueries(): Array<{ where: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(path.join(root, 'docker/grafana/dashboards/chunkscribe.json'), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ name: string; definition?: string }> };
  };
  return [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
    // label_values(metric, label) reads the metric too.
    ...dashboard.templating.list
      .filter((v) => v.definition !== undefined)
      .map((v) => ({
        where: `variable ${v.name}`,
        expr: (v.definition ?? '').replace(/^label_values\(([^,]+),.*\)$/, '$1'),
      })),
  ];
}

function alertQueries(): Array<{ where: string; expr: string }> {
  const rules = parse(readFileSync(path.join(root, 'docker/prometheus/alerts.yml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
  };
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
}

describe('the dashboard and the alert rules against a scrape of the running service', () => {
  let fake: FakeOpenAI;
  let receiver: WebhookReceiver;
  let server: TestServer;
  let samples: PromSample[] = [];
  const speech = speechFixture();

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    receiver = await startWebhookReceiver();
    server = await startServer({
      OPENAI_API_KEY: FAKE_OPENAI_KEY,
      OPENAI_BASE_URL: fake.url,
      CHUNK_SECONDS: '600',
      RETRY_BASE_DELAY_MS: '5',
      RETRY_MAX_DELAY_MS: '20',
      WEBHOOK_SECRET: `whsec_${Buffer.from('dashboard-test-secret-24b').toString('base64')}`,
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    // One retried provider call, so the retry and error series exist.
    fake.script([{ type: 'server_error', status: 503 }]);
    const created = await upload(server.url, speech.wav, { callback_url: `${receiver.url}/hook` });
    expect(created.status).toBe(202);
    expect((await waitForJob(server.url, created.body.id)).status).toBe('completed');
    const refused = await upload(server.url, null);
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('FILE_MISSING');
    await receiver.waitFor(1);
    // The job's end and the webhook's outcome are counted just after the client can see them.
    await until(
      async () => {
        samples = parsePromText(await (await fetch(`${server.url}/metrics`)).text());
        return (
          (sumOf(samples, 'chunkscribe_jobs_ended_total') ?? 0) > 0 &&
          (sumOf(samples, 'chunkscribe_webhook_deliveries_total') ?? 0) > 0
        );
      },
      'the job end and the webhook delivery in /metrics',
      { everyMs: 50 },
    );
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
    await fake.close();
    await removeDir(server.dataDir);
  });

  it.each([
    ['dashboard', dashboardQueries],
    ['alert rules', alertQueries],
  ])('every metric the %s query is in the scrape', (_what, queries) => {
    const scraped = new Set(samples.map((s) => s.name));
    const all = queries();
    expect(all.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const { where, expr } of all) {
      for (const name of metricNames(expr)) {
        if (scraped.has(name) || PROMETHEUS_OWN.has(name)) continue;
        const histogram = scraped.has(`${name}_bucket`) ? ' (a histogram: query its _bucket, _sum or _count)' : '';
        missing.push(`${where}: ${name}${histogram}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('has the series the panels and alerts select by label, with the values this run produced', () => {
    expect(sumOf(samples, 'chunkscribe_uploads_refused_total', { code: 'FILE_MISSING' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_webhook_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(sumOf(samples, 'chunkscribe_job_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(
      sumOf(samples, 'chunkscribe_chunk_transcription_seconds_bucket', { outcome: 'success', le: '+Inf' }),
    ).toBeGreaterThan(0);
    expect(sumOf(samples, 'chunkscribe_jobs', { status: 'queued' })).toBe(0);
    expect(sumOf(samples, 'chunkscribe_provider_retries_total')).toBe(1);
    expect(sumOf(samples, 'chunkscribe_circuit_state', { provider: 'openai' })).toBe(0);
  });
});
