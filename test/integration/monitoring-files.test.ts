/**
 * The `monitoring` profile's files, checked without Docker (it does not run where this project is developed):
 * promtool (Debian's `prometheus` package) checks the alert rules, runs their unit tests and checks the scrape
 * config laid out as compose mounts it; the compose services, the Grafana provisioning and the dashboard are read
 * and checked against each other. That every metric they query exists is test/app/dashboard-metrics.test.ts.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { metricNames } from '../support/promql-names.ts';
import { runCommand, type CommandRun } from '../support/run-command.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

/** promtool, failing (not skipping) with how to get it when it is missing: scripts/test.sh installs it. */
async function promtool(args: string[], cwd: string): Promise<CommandRun> {
  try {
    return await runCommand('promtool', args, {}, cwd);
  } catch (err) {
    throw new Error(`promtool did not run (apt-get install prometheus, or run scripts/test.sh): ${String(err)}`, {
      cause: err,
    });
  }
}

interface ComposeService {
  image?: string;
  profiles?: string[];
  command?: string[];
  volumes?: string[];
  ports?: string[];
  configs?: Array<{ source: string; target: string }>;
  environment?: Record<string, string>;
}
interface Compose {
  services: Record<string, ComposeService>;
  configs?: Record<string, { content?: string }>;
}
interface PrometheusConfig {
  rule_files: string[];
  scrape_configs: Array<{
    job_name: string;
    metrics_path: string;
    authorization?: { type: string; credentials_file: string };
    static_configs: Array<{ targets: string[] }>;
    dns_sd_configs?: Array<{ names: string[]; port: number }>;
  }>;
}

const compose = parse(read('docker/compose.yaml'), { merge: true }) as Compose;
const prometheusConfig = parse(read('docker/prometheus/prometheus.yml')) as PrometheusConfig;

/** The container path each of a service's bind mounts puts a repository file at, by repository path. */
function bindMounts(service: ComposeService): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const volume of service.volumes ?? []) {
    const [source, target] = volume.split(':') as [string, string];
    if (source.startsWith('./')) mounts.set(path.posix.join('docker', source), target);
  }
  return mounts;
}

describe('docker/prometheus', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('alerts.yml passes promtool check rules', async () => {
    const run = await promtool(['check', 'rules', 'alerts.yml'], path.join(root, 'docker/prometheus'));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('alerts.test.yml fires each alert it tests on synthetic series, and only then (promtool test rules)', async () => {
    const run = await promtool(['test', 'rules', 'alerts.test.yml'], path.join(root, 'docker/prometheus'));
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.code).toBe(0);
  });

  it('prometheus.yml passes promtool check config laid out as compose mounts it, with the token file beside it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'prometheus-config-'));
    dirs.push(dir);
    const mounts = bindMounts(compose.services.prometheus ?? {});
    const etc = path.posix.dirname(mounts.get('docker/prometheus/prometheus.yml') ?? '');
    expect(etc).toBe('/etc/prometheus');
    for (const [source, target] of mounts) {
      expect(path.posix.dirname(target), target).toBe(etc);
      copyFileSync(path.join(root, source), path.join(dir, path.posix.basename(target)));
    }
    const token = compose.services.prometheus?.configs?.find((c) => c.source === 'metrics_token');
    const job = prometheusConfig.scrape_configs.find((j) => j.job_name === 'chunkscribe');
    expect(token?.target).toBe(path.posix.join(etc, job?.authorization?.credentials_file ?? ''));
    writeFileSync(path.join(dir, path.posix.basename(token?.target ?? '')), 'scrape-secret\n');

    const run = await promtool(['check', 'config', 'prometheus.yml'], dir);
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.code).toBe(0);
    // Every rule file it names is mounted beside it.
    for (const file of prometheusConfig.rule_files) expect([...mounts.values()]).toContain(path.posix.join(etc, file));
  });

  it('scrapes /metrics of the api and of every worker with METRICS_TOKEN as the bearer token', () => {
    const job = prometheusConfig.scrape_configs.find((j) => j.job_name === 'chunkscribe');
    expect(job?.metrics_path).toBe('/metrics');
    expect(job?.authorization?.type).toBe('Bearer');
    expect(job?.static_configs.flatMap((s) => s.targets)).toEqual(['api:3000']);
    expect(job?.dns_sd_configs).toEqual([expect.objectContaining({ names: ['worker'], port: 3000 })]);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['api', 'worker']));
    expect(compose.configs?.metrics_token?.content).toBe('${METRICS_TOKEN:-}');
  });
});

describe('docker/compose.yaml monitoring profile', () => {
  it('runs Prometheus and Grafana from pinned images, only with --profile monitoring, published on 127.0.0.1 only', () => {
    for (const name of ['prometheus', 'grafana']) {
      const service = compose.services[name];
      expect(service?.profiles, name).toEqual(['monitoring']);
      expect(service?.image, name).toMatch(/^(prom\/prometheus|grafana\/grafana):v?\d+\.\d+\.\d+$/);
      expect(service?.ports?.length, name).toBeGreaterThan(0);
      for (const port of service?.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
      for (const source of bindMounts(service ?? {}).keys())
        expect(existsSync(path.join(root, source)), source).toBe(true);
    }
    // The monitoring pair must not join the default profile: `docker compose up` stays the service alone.
    const unprofiled = Object.entries(compose.services)
      .filter(([, s]) => s.profiles === undefined)
      .map(([n]) => n);
    expect(unprofiled).toEqual(['api']);
  });

  it('provisions the Prometheus data source and the dashboard folder where compose mounts them', () => {
    const grafana = bindMounts(compose.services.grafana ?? {});
    expect(grafana.get('docker/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const datasources = parse(read('docker/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: Array<{ type: string; url: string }>;
    };
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    expect(compose.services.prometheus?.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const providers = parse(read('docker/grafana/provisioning/dashboards/chunkscribe.yml')) as {
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(providers.providers.map((p) => [p.type, p.options.path])).toEqual([
      ['file', grafana.get('docker/grafana/dashboards')],
    ]);
  });
});

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

describe('docker/grafana/dashboards/chunkscribe.json', () => {
  const dashboard = JSON.parse(read('docker/grafana/dashboards/chunkscribe.json')) as {
    uid: string;
    schemaVersion: number;
    templating: { list: Array<{ name: string; type: string; query: unknown }> };
    panels: Panel[];
  };

  it('is a Grafana 11 dashboard whose every query goes to the data source its variable picks', () => {
    expect(dashboard.uid).toBe('chunkscribe');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({
      type: 'datasource',
      query: 'prometheus',
    });
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queried = dashboard.panels.filter((p) => p.type !== 'row');
    expect(queried.length).toBeGreaterThan(10);
    for (const panel of queried) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.datasource?.uid, panel.title).toBe('${datasource}');
        expect(metricNames(target.expr).length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
      }
    }
  });
});

describe('metricNames (the PromQL reading the dashboard and alert checks rely on)', () => {
  it('finds the selected metrics and nothing else: functions, label lists, matchers, ranges and variables are not metrics', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, route) (rate(http_seconds_bucket{instance=~"$instance", route!="by"}[$__rate_interval])))',
      ),
    ).toEqual(['http_seconds_bucket']);
    expect(
      metricNames('sum(increase(a_total{s="x"}[15m])) >= 3 and on (job) b / ignoring (x) c offset 5m > 1e3'),
    ).toEqual(['a_total', 'b', 'c']);
    expect(metricNames('up{job="chunkscribe"} == 0')).toEqual(['up']);
  });
});
