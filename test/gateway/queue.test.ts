/**
 * Redis mode specifics: jobs really go through BullMQ to a worker (here a real `npm run worker`
 * process), bad input is answered without retries, a gateway with no live worker is not ready and
 * times out cleanly, stored bitstreams carry the TTL, and both modes produce the same bitstreams.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFile } from 'node:fs/promises';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { blobKey, bullPrefix } from '../../src/workers/queue-protocol.js';
import { closeCodecs, FIXTURES, readShared, ROOT } from '../helpers.js';
import { startGateway, waitFor, type TestGateway } from './harness.js';
import { freePort } from './redis-server.js';

after(closeCodecs);

const post = (gw: TestGateway, body: unknown) =>
  fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('Redis mode: gateway and a separate worker process', () => {
  let gw: TestGateway;
  let worker: ChildProcess | undefined;
  let workerLog = '';
  let redis: Redis;
  let png: Buffer;
  let metricsPort: number;
  before(async () => {
    metricsPort = await freePort();
    gw = await startGateway('redis', { VLMPRESS_JOB_TIMEOUT_MS: '20000', VLMPRESS_STORE_TTL_SECONDS: '3600' }, { worker: false });
    redis = new Redis(gw.redisUrl!);
    png = await sharp(readShared('data', 'kodak', 'kodim05.png'))
      .extract({ left: 0, top: 0, width: 128, height: 96 })
      .png()
      .toBuffer();
  });
  after(async () => {
    worker?.kill('SIGKILL');
    await gw.close();
    redis.disconnect();
  });

  it('is not ready until a worker is live, then runs jobs on it', async () => {
    const notReady = await fetch(`${gw.base}/readyz`);
    assert.equal(notReady.status, 503);
    const body = (await notReady.json()) as { checks: Record<string, { ok: boolean; detail: string }> };
    assert.equal(body.checks['redis']!.ok, true);
    assert.equal(body.checks['workers']!.ok, false);
    assert.match(body.checks['workers']!.detail, /npm run worker/);

    worker = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'workers', 'worker-main.js')], {
      env: {
        ...process.env,
        REDIS_URL: gw.redisUrl!,
        VLMPRESS_REDIS_PREFIX: gw.prefix,
        VLMPRESS_WORKER_THREADS: '1',
        VLMPRESS_WORKER_METRICS_PORT: String(metricsPort),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (d: Buffer) => (workerLog += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
    await waitFor('the worker to be ready', async () => ((await fetch(`${gw.base}/readyz`)).status === 200 ? true : undefined));
    await waitFor('the worker log line', async () => (workerLog.includes('queue worker ready') ? true : undefined), 5000);

    const res = await post(gw, { image: png.toString('base64'), quality: 3 });
    assert.equal(res.status, 200, await res.clone().text());
    const r = (await res.json()) as { id: string; quality: number };
    assert.equal(r.quality, 3);
    const queue = new Queue('encode', { connection: { url: gw.redisUrl! }, prefix: bullPrefix(gw.prefix) });
    try {
      const counts = await queue.getJobCounts('completed', 'failed');
      assert.equal(counts['completed'], 1, 'the encode ran as a BullMQ job');
      assert.equal(counts['failed'], 0);
    } finally {
      await queue.close();
    }
    const scrape = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(scrape, /vlmpress_worker_jobs_total\{queue="encode",outcome="ok"\} 1\b/);
    assert.match(scrape, /vlmpress_worker_job_duration_seconds_count\{queue="encode"\} 1\b/);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
    const ttl = await redis.ttl(`${gw.prefix}:bitstream:${r.id}`);
    assert.ok(ttl > 3500 && ttl <= 3600, `stored with the configured TTL (${ttl})`);
    const leftovers = await redis.keys(`${gw.prefix}:blob:*`);
    assert.deepEqual(leftovers, [], 'job inputs and outputs are collected');
  });

  it('answers bad input from the worker as a 4xx without retrying it', async () => {
    const res = await post(gw, { image: Buffer.from('definitely not an image').toString('base64') });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'bad_image');
    const queue = new Queue('encode', { connection: { url: gw.redisUrl! }, prefix: bullPrefix(gw.prefix) });
    try {
      const [job] = await queue.getJobs(['completed'], 0, 0, false);
      assert.equal(job!.attemptsMade, 1, 'one run, no retry');
      assert.equal(job!.returnvalue.ok, false);
    } finally {
      await queue.close();
    }
  });

  it('refuses to start a second worker whose metrics port is taken, before it announces itself', async () => {
    const heartbeats = async () => (await redis.keys(`${gw.prefix}:workers:*`)).length;
    const before = await heartbeats();
    const second = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'workers', 'worker-main.js')], {
      env: {
        ...process.env,
        REDIS_URL: gw.redisUrl!,
        VLMPRESS_REDIS_PREFIX: gw.prefix,
        VLMPRESS_WORKER_THREADS: '1',
        VLMPRESS_WORKER_METRICS_PORT: String(metricsPort),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    second.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /vlmpress worker: cannot serve metrics on port \d+ \(VLMPRESS_WORKER_METRICS_PORT\)/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'a message, not a stack trace');
    assert.equal(await heartbeats(), before, 'it never counted as a live worker');
  });

  it('drops a job whose deadline passed while it waited, and stops one whose deadline passes while it runs', async () => {
    const flat = await readFile(path.join(FIXTURES, 'flat-2048-q1.vlmp'));
    const connection = { url: gw.redisUrl! };
    const queue = new Queue('decode', { connection, prefix: bullPrefix(gw.prefix) });
    const events = new QueueEvents('decode', { connection, prefix: bullPrefix(gw.prefix) });
    try {
      await events.waitUntilReady();
      const outcome = async (deadline: number) => {
        const input = blobKey(gw.prefix, `deadline-test-${deadline}`);
        await redis.set(input, flat, 'EX', 60);
        const job = await queue.add('decode', { input, format: 'png', deadline });
        const ret = (await job.waitUntilFinished(events, 30_000)) as { ok: boolean; expired?: string };
        assert.equal(await redis.exists(input), 0, 'its input is deleted');
        return ret;
      };
      // The 2048x2048 decode takes seconds: with 300 ms left it is stopped between two tiles.
      assert.deepEqual(await outcome(Date.now() - 1), { ok: false, expired: 'queued' });
      assert.deepEqual(await outcome(Date.now() + 300), { ok: false, expired: 'running' });
      // The job is answered at its deadline; its thread counts the stop when it reaches the next tile.
      const stopped = /^vlmpress_jobs_expired_total\{queue="decode",stage="running"\} 1$/m;
      const text = await waitFor('the stopped decode to be counted', async () => {
        const t = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return stopped.test(t) ? t : undefined;
      });
      assert.match(text, /^vlmpress_jobs_expired_total\{queue="decode",stage="queued"\} 1$/m);
      assert.match(text, /^vlmpress_worker_jobs_total\{queue="decode",outcome="expired"\} 2$/m);
      assert.ok(Number(/^vlmpress_job_abandoned_seconds_total\{queue="decode"\} (\S+)$/m.exec(text)?.[1]) > 0);
    } finally {
      await events.close();
      await queue.close();
    }
  });

  it('finishes the active job when the worker is asked to stop', async () => {
    const big = await sharp(readShared('data', 'kodak', 'kodim05.png'))
      .png()
      .toBuffer();
    const pending = post(gw, { image: big.toString('base64'), quality: 7 });
    const queue = new Queue('encode', { connection: { url: gw.redisUrl! }, prefix: bullPrefix(gw.prefix) });
    try {
      await waitFor('the job to be active', async () => ((await queue.getJobCounts('active'))['active'] ? true : undefined));
    } finally {
      await queue.close();
    }
    worker!.kill('SIGTERM');
    const res = await pending;
    assert.equal(res.status, 200, 'the job in flight completed during shutdown');
    const code = await new Promise<number | null>((resolve) => worker!.once('exit', resolve));
    assert.equal(code, 0, workerLog);
    worker = undefined;
    await waitFor('the heartbeat to go', async () => ((await redis.keys(`${gw.prefix}:workers:*`)).length === 0 ? true : undefined));
  });
});

describe('Redis mode without workers', () => {
  it('times out with 503 job_timeout and withdraws the job', async () => {
    const gw = await startGateway('redis', { VLMPRESS_JOB_TIMEOUT_MS: '300' }, { worker: false });
    try {
      const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } })
        .png()
        .toBuffer();
      const res = await post(gw, { image: png.toString('base64') });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'job_timeout');
      const queue = new Queue('encode', { connection: { url: gw.redisUrl! }, prefix: bullPrefix(gw.prefix) });
      try {
        assert.equal((await queue.getJobCounts('waiting'))['waiting'], 0);
        const text = await (await fetch(`${gw.base}/metrics`)).text();
        assert.match(text, /^vlmpress_jobs_expired_total\{queue="encode",stage="queued"\} 1$/m, 'counted as dropped before it ran');
      } finally {
        await queue.close();
      }
    } finally {
      await gw.close();
    }
  });
});

describe('both job modes', () => {
  it('produce identical bitstreams for the same request', async () => {
    const png = await sharp(readShared('data', 'kodak', 'kodim19.png'))
      .extract({ left: 40, top: 300, width: 150, height: 101 })
      .png()
      .toBuffer();
    const ids: string[] = [];
    for (const mode of ['embedded', 'redis'] as const) {
      const gw = await startGateway(mode);
      try {
        for (const body of [{ quality: 1 }, { quality: 6.25 }, { max_bytes: 700 }]) {
          const r = (await (await post(gw, { image: png.toString('base64'), ...body })).json()) as { id: string };
          ids.push(r.id);
        }
      } finally {
        await gw.close();
      }
    }
    assert.deepEqual(ids.slice(0, 3), ids.slice(3));
  });
});
