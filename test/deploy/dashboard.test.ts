/**
 * The Grafana dashboard and the Prometheus alert rules only query metrics the product really exports:
 * every metric name in their PromQL is exposed by a real gateway's /metrics (started in-process) or by
 * the queue worker's registry (createWorkerMetrics, what `npm run worker` serves on its port).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createWorkerMetrics } from '../../src/metrics/registry.js';
import { closeCodecs, ROOT } from '../helpers.js';
import { startGateway, type TestGateway } from '../gateway/harness.js';

after(closeCodecs);

const DASHBOARD = path.join(ROOT, 'deploy', 'grafana', 'vlmpress-dashboard.json');
const ALERTS = path.join(ROOT, 'deploy', 'prometheus', 'alerts.yml');

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; datasource?: { uid: string } }[];
}

/** Every `expr` string anywhere in the dashboard. */
function dashboardExprs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) dashboardExprs(v, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') out.push(v);
      else dashboardExprs(v, out);
    }
  }
  return out;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/** Metric names in a PromQL expression: identifiers left after removing strings, label matchers,
 * ranges and grouping clauses, that are not function calls or keywords. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.$])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Series names a Prometheus scrape of this exposition can contain (histogram/summary suffixes too). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

describe('deployment: Grafana dashboard and alert rules', () => {
  let gw: TestGateway;
  let exported: Set<string>;
  let workerNames: Set<string>;
  before(async () => {
    gw = await startGateway('embedded');
    const res = await fetch(`${gw.base}/metrics`);
    assert.equal(res.status, 200);
    const gatewayNames = exposedNames(await res.text());
    const worker = createWorkerMetrics();
    workerNames = exposedNames(await worker.registry.metrics());
    exported = new Set([...gatewayNames, ...workerNames]);
    assert.ok(gatewayNames.has('vlmpress_http_request_duration_seconds_bucket'), 'the gateway scrape lists its histograms');
    assert.ok(workerNames.has('vlmpress_worker_jobs_total'), 'the worker registry lists its counters');
  });
  after(async () => gw?.close());

  it('extracts metric names from PromQL correctly', () => {
    assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{status=~"5.."}[$__rate_interval])))'), [
      'a_bucket',
    ]);
    assert.deepEqual(metricNames('sum(rate(x_total[5m])) / sum(increase(y_total[$__range])) > 1e-9'), ['x_total', 'y_total']);
    assert.deepEqual(metricNames('label_replace(m_info, "role", "gateway", "", "") or absent(up{job="a"}) and on (instance) z'), [
      'm_info',
      'up',
      'z',
    ]);
  });

  it('queries only metrics the gateway and the worker export', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as unknown;
    const exprs = dashboardExprs(dashboard);
    assert.ok(exprs.length >= 30, `the dashboard has ${exprs.length} queries`);
    const used = new Set(exprs.flatMap(metricNames));
    const unknown = [...used].filter((n) => !exported.has(n));
    assert.deepEqual(unknown, [], `dashboard metrics nobody exports: ${unknown.join(', ')}`);
    // The panels: requests/latency, bytes by stage (saved, ratio), image tokens, bpp/quality, queue and job latency,
    // errors, upstream latency.
    for (const need of [
      'vlmpress_http_request_duration_seconds_bucket',
      'vlmpress_image_bytes_total',
      'vlmpress_image_tokens_total',
      'vlmpress_encode_bits_per_pixel_bucket',
      'vlmpress_encode_quality_bucket',
      'vlmpress_queue_jobs',
      'vlmpress_worker_job_duration_seconds_bucket',
      'vlmpress_worker_job_wait_seconds_bucket',
      'vlmpress_errors_total',
      'vlmpress_upstream_request_duration_seconds_bucket',
    ]) {
      assert.ok(used.has(need), `the dashboard shows ${need}`);
    }
    assert.ok(
      [...used].some((n) => workerNames.has(n)),
      'worker metrics are on the dashboard',
    );
  });

  it('is a well-formed dashboard on the provisioned datasource', () => {
    const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      panels: Panel[];
      templating: { list: { name: string; type: string; query?: string }[] };
    };
    assert.equal(d.uid, 'vlmpress');
    const ds = d.templating.list.find((v) => v.name === 'datasource');
    assert.equal(ds?.type, 'datasource');
    assert.equal(ds?.query, 'prometheus');
    const ids = new Set<number>();
    for (const p of d.panels) {
      assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
      ids.add(p.id);
      assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `panel "${p.title}" fits the 24-column grid`);
      if (p.type === 'row') continue;
      assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the datasource variable`);
      assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
      for (const t of p.targets!) assert.equal(t.datasource?.uid, '${datasource}', `a query of "${p.title}" uses the datasource variable`);
    }
  });

  it("alert rules query only exported metrics (and Prometheus' own up)", () => {
    const text = readFileSync(ALERTS, 'utf8');
    const exprs: string[] = [];
    // `expr: ...` on one line or as a `|` block indented below it
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
      if (!m) continue;
      if (m[2] !== '|') {
        exprs.push(m[2]!);
        continue;
      }
      const block: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > m[1]!.length)) block.push(lines[++i]!);
      exprs.push(block.join('\n'));
    }
    assert.ok(exprs.length >= 5, `${exprs.length} alert expressions`);
    const unknown = [...new Set(exprs.flatMap(metricNames))].filter((n) => !exported.has(n) && n !== 'up');
    assert.deepEqual(unknown, [], `alert metrics nobody exports: ${unknown.join(', ')}`);
  });
});
