/**
 * The deployment files speak the product's language: every VLMPRESS_* name in the compose file, the
 * Dockerfiles, the Helm chart and docs/deployment.md is one src/config/config.ts reads; every setting
 * config.ts reads can be set through the chart; the chart's appVersion is the package version; and the
 * Redis lists the KEDA ScaledObject counts are the keys BullMQ really fills.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { QueueKeys } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { bullPrefix } from '../../src/workers/queue-protocol.js';
import { closeCodecs, ROOT } from '../helpers.js';
import { startGateway } from '../gateway/harness.js';

after(closeCodecs);

const read = (...p: string[]) => readFileSync(path.join(ROOT, ...p), 'utf8');
const CHART = path.join(ROOT, 'deploy', 'k8s', 'vlmpress');
const HELM = path.join(ROOT, '.tools', 'bin', 'helm');
/** Read by the test suites, not by the product: named in docs/deployment.md (what CI validates). */
const TEST_ONLY = new Set(['VLMPRESS_TEST_REDIS_URL']);
/** Tests and benchmarks only (README): the chart deliberately offers no way to set them. */
const NOT_IN_CHART = new Set(['VLMPRESS_FETCH_ALLOW_CIDRS', 'VLMPRESS_JOB_DEADLINES']);

/** The environment variables loadConfig reads, from its helper calls: str('X'), int('X', ...), ... */
function configNames(): Set<string> {
  const src = read('src', 'config', 'config.ts');
  return new Set([...src.matchAll(/\b(?:str|int|num|url|oneOf|list)\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Keys of the `environment:` blocks per compose service, and of the `x-env` anchor. */
function composeEnv(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const lines = text.split('\n');
  const collect = (i: number, indent: number, name: string): number => {
    const keys = out.get(name) ?? [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > indent)) {
      const k = /^\s+([A-Z][A-Z0-9_]*):/.exec(lines[++i]!);
      if (k) keys.push(k[1]!);
    }
    out.set(name, keys);
    return i;
  };
  let section = '';
  let service = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const top = /^([\w-]+):/.exec(line);
    if (top) {
      section = top[1]!;
      service = '';
      if (section === 'x-env') i = collect(i, 0, 'x-env');
      continue;
    }
    const svc = /^ {2}([\w-]+):\s*$/.exec(line);
    if (section === 'services' && svc) service = svc[1]!;
    const env = /^(\s+)environment:\s*$/.exec(line);
    if (section === 'services' && service && env) i = collect(i, env[1]!.length, service);
  }
  return out;
}

describe('deployment: configuration names', () => {
  const names = configNames();

  it('reads the names from config.ts', () => {
    for (const n of [
      'PORT',
      'HOST',
      'REDIS_URL',
      'LOG_LEVEL',
      'VLMPRESS_REDIS_PREFIX',
      'VLMPRESS_WORKER_METRICS_PORT',
      'VLMPRESS_API_KEYS',
      'VLMPRESS_EXECUTION_PROVIDERS',
    ]) {
      assert.ok(names.has(n), `config.ts reads ${n}`);
    }
    assert.ok(names.size >= 30, `${names.size} names`);
  });

  it('compose, Dockerfiles, chart and deployment docs name no unknown VLMPRESS_* variable', () => {
    const files = [
      ...filesUnder(path.join(ROOT, 'deploy', 'docker')),
      ...filesUnder(path.join(ROOT, 'deploy', 'k8s')),
      path.join(ROOT, 'docs', 'deployment.md'),
    ];
    const unknown: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\bVLMPRESS_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        if (!names.has(m[0]) && !TEST_ONLY.has(m[0])) unknown.push(`${path.relative(ROOT, f)}: ${m[0]}`);
      }
    }
    assert.deepEqual(unknown, []);
  });

  it('every environment variable the compose file sets for gateway and workers is read by config.ts', () => {
    const env = composeEnv(read('deploy', 'docker', 'docker-compose.yml'));
    for (const svc of ['x-env', 'gateway', 'worker', 'worker-gpu']) {
      const keys = env.get(svc);
      assert.ok(keys?.length, `compose ${svc} sets environment variables`);
      const unknown = keys!.filter((k) => !names.has(k));
      assert.deepEqual(unknown, [], `compose ${svc}: unknown ${unknown.join(', ')}`);
    }
    assert.ok(env.get('x-env')!.includes('REDIS_URL'), 'compose runs in Redis mode');
  });

  it('every setting config.ts reads can be set through the chart', () => {
    const schema = JSON.parse(read('deploy', 'k8s', 'vlmpress', 'values.schema.json')) as {
      definitions: { config: { properties: Record<string, unknown> } };
    };
    const settable = new Set(Object.keys(schema.definitions.config.properties));
    const templates = filesUnder(path.join(CHART, 'templates'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const managed = new Set([...templates.matchAll(/- name: ([A-Z][A-Z0-9_]*)\b/g)].map((m) => m[1]!));
    // settable in values and set by the templates at the same time would be ambiguous
    assert.deepEqual(
      [...settable].filter((n) => managed.has(n)),
      [],
    );
    const missing = [...names].filter((n) => !settable.has(n) && !managed.has(n) && !NOT_IN_CHART.has(n));
    assert.deepEqual(missing, [], `settings the chart cannot set: ${missing.join(', ')}`);
    const unknown = [...settable].filter((n) => !names.has(n));
    assert.deepEqual(unknown, [], `values.schema.json offers settings config.ts does not read: ${unknown.join(', ')}`);
  });

  it('the chart deploys this version', () => {
    const pkg = JSON.parse(read('package.json')) as { version: string };
    assert.match(read('deploy', 'k8s', 'vlmpress', 'Chart.yaml'), new RegExp(`^appVersion: "${pkg.version.replace(/\./g, '\\.')}"$`, 'm'));
  });
});

describe('deployment: KEDA counts the lists BullMQ fills', () => {
  it('the ScaledObject names the wait and active lists, and a queued job sits in the wait list', async (t) => {
    if (!existsSync(HELM)) {
      t.skip('helm is not installed yet (scripts/validate-deploy.sh puts it in .tools/bin/helm)');
      return;
    }
    // A gateway with no worker: its job stays queued.
    const gw = await startGateway('redis', { VLMPRESS_JOB_TIMEOUT_MS: '8000' }, { worker: false });
    const redis = new Redis(gw.redisUrl!);
    try {
      const rendered = execFileSync(
        HELM,
        [
          'template',
          't',
          CHART,
          '-f',
          path.join(ROOT, 'deploy', 'k8s', 'values-gpu-keda.yaml'),
          '--set',
          `config.VLMPRESS_REDIS_PREFIX=${gw.prefix}`,
        ],
        { encoding: 'utf8' },
      );
      const listNames = [...rendered.matchAll(/listName: "([^"]+)"/g)].map((m) => m[1]!).sort();
      const keys = ['encode', 'decode'].map((q) => new QueueKeys(bullPrefix(gw.prefix)).getKeys(q));
      assert.deepEqual(listNames, keys.flatMap((k) => [k['wait']!, k['active']!]).sort());

      const png = await sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 200, g: 40, b: 90 } } })
        .png()
        .toBuffer();
      const form = new FormData();
      form.append('image', new Blob([png], { type: 'image/png' }), 'a.png');
      const pending = fetch(`${gw.base}/compress`, { method: 'POST', body: form });
      const waitKey = `${gw.prefix}:bull:encode:wait`;
      let len = 0;
      for (let i = 0; i < 350 && len === 0; i++) {
        len = await redis.llen(waitKey);
        if (!len) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(len, 1, `${waitKey} holds the queued job`);
      assert.equal(await redis.type(waitKey), 'list', 'KEDA reads it with LLEN');
      assert.ok(listNames.includes(waitKey));
      const res = await pending;
      assert.equal(res.status, 503, 'without a worker the job times out');
      await res.arrayBuffer();
    } finally {
      redis.disconnect();
      await gw.close();
    }
  });
});
