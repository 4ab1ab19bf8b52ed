/**
 * Faults the gateway must survive with a typed answer: a job that overruns its timeout (the process
 * stays alive, the queue stays first-come first-served), a bitstream announcing more pixels than the
 * gateway makes, damaged store entries (a miss that the next request repairs), a Redis outage (fast
 * 503 with Retry-After, metrics still answer) and a worker killed with SIGKILL (readiness notices
 * within seconds). Larger runs of the same faults: bench/chaos.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { parseContainer, serialiseContainer } from '../../src/codec/container.js';
import { JobTimeoutError } from '../../src/workers/jobs.js';
import { HEARTBEAT_TTL_MS } from '../../src/workers/queue-protocol.js';
import { ThreadPoolRunner } from '../../src/workers/thread-pool.js';
import { closeCodecs, FIXTURES, readShared, ROOT } from '../helpers.js';
import { startGateway, waitFor, type TestGateway } from './harness.js';
import { freePort } from './redis-server.js';

after(closeCodecs);

const FLAT_2048 = path.join(FIXTURES, 'flat-2048-q1.vlmp');
const decompress = (gw: TestGateway, body: Uint8Array) =>
  fetch(`${gw.base}/decompress`, { method: 'POST', headers: { 'content-type': 'application/vnd.vlmpress' }, body: Buffer.from(body) });
const compress = (gw: TestGateway, image: Buffer) =>
  fetch(`${gw.base}/compress`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: image.toString('base64'), quality: 2 }),
  });

describe('embedded mode: jobs that overrun their timeout', () => {
  let gw: TestGateway;
  before(async () => {
    // One codec thread; decoding the flat 2048x2048 bitstream takes about 3 s of it.
    gw = await startGateway('embedded', { VLMPRESS_JOB_TIMEOUT_MS: '1200' });
  });
  after(async () => gw.close());

  it('answers 503 job_timeout and the process keeps serving (the thread is never torn down)', async () => {
    const bomb = await readFile(FLAT_2048);
    const r = await decompress(gw, bomb);
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'job_timeout');
    // The decode stops at its next tile boundary (its deadline has passed) and frees the thread;
    // ordinary work then runs again. Before, the process aborted (Napi::Error) after such a timeout.
    await waitFor(
      'the abandoned decode to stop',
      async () => (/^vlmpress_queue_jobs\{state="active"\} 0$/m.test(await (await fetch(`${gw.base}/metrics`)).text()) ? true : undefined),
      60_000,
    );
    const png = await sharp(readShared('data', 'kodak', 'kodim05.png'))
      .resize(96, 64)
      .png()
      .toBuffer();
    const ok = await compress(gw, png);
    assert.equal(ok.status, 200, await ok.text());
    const metrics = await (await fetch(`${gw.base}/metrics`)).text();
    assert.match(metrics, /^vlmpress_jobs_abandoned_total 1$/m);
    // Stopped at a safe point, not run to the end; its thread time is counted as abandoned.
    assert.match(metrics, /^vlmpress_jobs_expired_total\{queue="decode",stage="running"\} 1$/m);
    const seconds = (name: string) => Number(new RegExp(`^${name}\\{queue="decode"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
    assert.ok(seconds('vlmpress_job_abandoned_seconds_total') > 0);
    assert.equal(seconds('vlmpress_job_abandoned_seconds_total'), seconds('vlmpress_job_busy_seconds_total'));
  });

  it('runs queued jobs first come, first served; past the deadline it drops queued jobs and stops the running one', async () => {
    const expired: string[] = [];
    const worked: boolean[] = [];
    const pool = new ThreadPoolRunner({
      threads: 1,
      jobTimeoutMs: 1_500,
      ortThreads: 1,
      executionProviders: ['cpu'],
      maxPixels: 40_000_000,
      maxDecodePixels: 2048 * 2048,
      observer: {
        expired: (queue, stage) => expired.push(`${queue} ${stage}`),
        worked: (_queue, _seconds, abandoned) => worked.push(abandoned),
      },
    });
    try {
      await pool.ready();
      const bitstreams = await Promise.all(
        [40, 48, 56, 64, 72, 80].map(async (w) => {
          const png = await sharp(readShared('data', 'kodak', 'kodim07.png'))
            .resize(w, w)
            .png()
            .toBuffer();
          return (await pool.encode({ image: png, quality: 2, resize: { maxLongSide: 2048 } })).bitstream;
        }),
      );
      const done: number[] = [];
      await Promise.all(
        bitstreams.map(async (b, i) => {
          await pool.decode({ bitstream: b, format: 'png' });
          done.push(i);
        }),
      );
      assert.deepEqual(done, [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(expired, []);
      assert.equal(worked.filter((a) => a).length, 0, 'every result so far was read');
      // A 3 s decode holds the only thread; the small job behind it times out while still queued.
      const slow = pool.decode({ bitstream: await readFile(FLAT_2048), format: 'png' });
      const queued = pool.decode({ bitstream: bitstreams[0]!, format: 'png' });
      await assert.rejects(slow, JobTimeoutError);
      await assert.rejects(queued, JobTimeoutError);
      assert.deepEqual(await pool.counts(), { waiting: 0, active: 1 }, 'the queued job left the queue at its deadline');
      await waitFor('the running decode to stop', async () => ((await pool.counts()).active === 0 ? true : undefined), 30_000);
      assert.deepEqual(expired.sort(), ['decode queued', 'decode running'], 'the queued one never ran; the running one stopped');
      assert.deepEqual(worked.slice(-1), [true], 'its thread time counted as abandoned');
      // A caller's own deadline, earlier than the job timeout, is honoured too.
      await assert.rejects(pool.decode({ bitstream: bitstreams[0]!, format: 'png', deadline: Date.now() - 1 }), JobTimeoutError);
    } finally {
      await pool.close();
    }
  });

  it('refuses a bitstream announcing more than the decode limit at once, with 413', async () => {
    const c = parseContainer(await readFile(FLAT_2048));
    const huge = serialiseContainer({ ...c, width: 65535, height: 65535 });
    const t0 = performance.now();
    const r = await decompress(gw, huge);
    assert.equal(r.status, 413);
    const body = (await r.json()) as { error: { code: string; details: { maxDecodePixels: number } } };
    assert.equal(body.error.code, 'image_too_large');
    assert.equal(body.error.details.maxDecodePixels, 2048 * 2048);
    assert.ok(performance.now() - t0 < 1_000);
  });
});

describe('filesystem store: damaged entries', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway('embedded');
  });
  after(async () => gw.close());

  for (const part of ['vlmp', 'json'] as const) {
    it(`treats a truncated .${part} as a miss, counts it and rewrites it on the next compress`, async () => {
      const png = await sharp(readShared('data', 'kodak', 'kodim11.png'))
        .resize(part === 'vlmp' ? 80 : 88, 64)
        .png()
        .toBuffer();
      const first = (await (await compress(gw, png)).json()) as { id: string; bytes: number };
      const dir = path.join(gw.dir, 'bitstreams', first.id.slice(0, 2));
      const file = path.join(dir, `${first.id}.${part}`);
      await truncate(file, 5);
      const missing = await fetch(`${gw.base}/bitstreams/${first.id}`);
      assert.equal(missing.status, 404);
      const again = await compress(gw, png);
      assert.equal(again.status, 200);
      const body = (await again.json()) as { id: string; cached: boolean };
      assert.equal(body.id, first.id);
      assert.equal(body.cached, false, 'encoded again, not served from the damaged entry');
      const served = await fetch(`${gw.base}/bitstreams/${first.id}`);
      assert.equal(served.status, 200);
      assert.equal(Buffer.from(await served.arrayBuffer()).length, first.bytes);
      const metrics = await (await fetch(`${gw.base}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(`^vlmpress_store_corrupt_entries_total\\{part="${part === 'vlmp' ? 'bitstream' : 'meta'}"\\} 1$`, 'm'),
      );
      // No temporary files are left behind by the durable writes.
      assert.deepEqual(
        (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
        [],
      );
    });
  }
});

/** A private redis-server that the test may kill and restart on the same port. */
class OwnRedis {
  child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
    });
  }
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    await new Promise((r) => {
      c.once('exit', r);
      c.kill('SIGKILL');
    });
  }
}

describe('Redis mode: outages and dead workers', () => {
  let redis: OwnRedis;
  let gw: TestGateway;
  let dir: string;
  let worker: ChildProcess | undefined;
  let png: Buffer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-redis-'));
    redis = new OwnRedis(await freePort(), dir);
    await redis.start();
    gw = await startGateway('redis', { REDIS_URL: redis.url, VLMPRESS_JOB_TIMEOUT_MS: '15000' }, { worker: false });
    png = await sharp(readShared('data', 'kodak', 'kodim05.png'))
      .resize(96, 64)
      .png()
      .toBuffer();
  });
  after(async () => {
    worker?.kill('SIGKILL');
    await gw.close();
    await redis.kill();
    await rm(dir, { recursive: true, force: true });
  });

  /** A real `npm run worker` process on this test's Redis and prefix. */
  const startWorker = () =>
    spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'workers', 'worker-main.js')], {
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        VLMPRESS_REDIS_PREFIX: gw.prefix,
        VLMPRESS_WORKER_THREADS: '1',
        VLMPRESS_WORKER_METRICS_PORT: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });

  it('readiness drops a worker killed with SIGKILL within the heartbeat lifetime', async () => {
    worker = startWorker();
    await waitFor('a ready gateway', async () => ((await fetch(`${gw.base}/readyz`)).status === 200 ? true : undefined));
    assert.equal((await compress(gw, png)).status, 200);
    const killedAt = Date.now();
    worker.kill('SIGKILL');
    await waitFor(
      'readiness to notice',
      async () => ((await fetch(`${gw.base}/readyz`)).status === 503 ? true : undefined),
      HEARTBEAT_TTL_MS + 3_000,
    );
    assert.ok(Date.now() - killedAt <= HEARTBEAT_TTL_MS + 2_500);
  });

  it('answers 503 redis_unavailable with Retry-After at once while Redis is down, and recovers', async () => {
    await redis.kill();
    const t0 = performance.now();
    const r = await compress(gw, png);
    const ms = performance.now() - t0;
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '2');
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'redis_unavailable');
    assert.ok(ms < 1_000, `answered in ${ms.toFixed(0)} ms`);
    const got = await fetch(`${gw.base}/bitstreams/${'a'.repeat(64)}`);
    assert.equal(got.status, 503);
    const m0 = performance.now();
    const metrics = await fetch(`${gw.base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.ok(performance.now() - m0 < 1_000, '/metrics does not wait on Redis');
    assert.equal((await fetch(`${gw.base}/readyz`)).status, 503);

    await redis.start();
    worker = startWorker();
    await waitFor('a ready gateway after the restart', async () => ((await fetch(`${gw.base}/readyz`)).status === 200 ? true : undefined));
    const ok = await compress(gw, png);
    assert.equal(ok.status, 200, await ok.text());
  });
});
