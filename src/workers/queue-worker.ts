/**
 * A queue worker (Redis mode): BullMQ workers on the encode and decode queues hand each job to a
 * pool of worker threads running the shared processor, so the CPU-heavy codec never blocks the
 * event loop that renews job locks. A heartbeat key tells gateways what this worker serves.
 */
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import { Queue, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import type { Logger } from 'pino';
import { isCodecError } from '../codec/index.js';
import type { GatewayConfig } from '../config/config.js';
import { bullConnection, connectRedis } from '../infra/redis.js';
import { JobTimeoutError } from './jobs.js';
import {
  BEAT_SCRIPT,
  blobKey,
  blobTtlSeconds,
  bullPrefix,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TTL_MS,
  lockSettings,
  QUEUES,
  workerKeys,
  type DecodeQueueData,
  type EncodeQueueData,
  INPUT_LOST,
  type EncodeQueueValue,
  type QueueReturn,
  type WorkerHeartbeat,
} from './queue-protocol.js';
import { ThreadPoolRunner } from './thread-pool.js';
import { createWorkerMetrics, type WorkerMetrics } from '../metrics/registry.js';
import { jobWorkObserver } from './job-observer.js';

/** A worker's own tiny HTTP endpoint for Prometheus and for Kubernetes probes. */
async function serveWorkerMetrics(port: number, metrics: WorkerMetrics, running: () => boolean): Promise<Server> {
  const server = createServer((req, res) => {
    const route = (req.url ?? '').split('?')[0];
    if (route === '/metrics') {
      void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
    } else if (route === '/healthz' || route === '/readyz') {
      const ok = route === '/healthz' || running();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'not running' }));
    } else {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'not_found', message: 'try /metrics, /healthz or /readyz' } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve());
  });
  return server;
}

/** The worker cannot start for a reason its operator must fix (a port taken, no model). */
export class WorkerStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerStartError';
  }
}

export interface QueueWorkerHandle {
  heartbeat: WorkerHeartbeat;
  metrics: WorkerMetrics;
  /** stop taking jobs, finish the active ones, then release the pool and connections */
  close(): Promise<void>;
}

export async function startQueueWorker(
  config: GatewayConfig,
  log: Logger,
  options: { modelDirs?: string[] } = {},
): Promise<QueueWorkerHandle> {
  if (!config.redisUrl) throw new Error('the queue worker needs REDIS_URL');
  const redisUrl = config.redisUrl;
  const redis = await connectRedis({ url: redisUrl, name: 'vlmpress-worker' });
  const metrics = createWorkerMetrics();
  const pool = new ThreadPoolRunner({
    threads: config.workerThreads,
    jobTimeoutMs: config.jobTimeoutMs,
    deadlines: config.jobDeadlines,
    observer: jobWorkObserver(metrics),
    ortThreads: config.ortThreads,
    executionProviders: config.executionProviders,
    maxPixels: config.maxPixels,
    maxDecodePixels: config.maxDecodePixels,
    avifenc: config.avifenc,
    ...(options.modelDirs ? { modelDirs: options.modelDirs } : {}),
  });
  let models;
  try {
    ({ models } = await pool.ready());
  } catch (e) {
    await pool.close();
    redis.disconnect();
    throw e;
  }
  const id = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const heartbeat: WorkerHeartbeat = {
    id,
    host: os.hostname(),
    pid: process.pid,
    models,
    concurrency: config.workerConcurrency,
    startedAt: new Date().toISOString(),
  };
  const keys = workerKeys(config.redisPrefix);
  const beat = () =>
    redis
      .eval(BEAT_SCRIPT, 2, keys.beats, keys.info, id, JSON.stringify(heartbeat), HEARTBEAT_TTL_MS)
      .catch((e: Error) => log.warn({ err: e.message }, 'heartbeat failed'));
  const outputTtl = blobTtlSeconds(config.jobTimeoutMs, config.jobAttempts, config.jobBackoffMs);

  for (const m of models) metrics.modelInfo.set({ name: m.name, id: m.id, provider: m.provider }, 1);
  const process_ = async (job: BullJob): Promise<QueueReturn> => {
    const t0 = performance.now();
    metrics.jobWait.observe({ queue: job.queueName }, Math.max(0, Date.now() - job.timestamp) / 1000);
    metrics.activeJobs.inc();
    let outcome = 'failed';
    try {
      const ret = await run(job);
      outcome = ret.ok ? 'ok' : 'expired' in ret ? 'expired' : 'bad_input';
      return ret;
    } finally {
      metrics.activeJobs.dec();
      metrics.jobs.inc({ queue: job.queueName, outcome });
      metrics.jobDuration.observe({ queue: job.queueName }, (performance.now() - t0) / 1000);
    }
  };

  // Whether jobs wait in Redis behind this one: the pool then starts only jobs with the time most need.
  const counted = Object.fromEntries(
    [QUEUES.encode, QUEUES.decode].map((name) => [
      name,
      new Queue(name, { connection: bullConnection(redisUrl, `vlmpress-worker-counts-${name}`), prefix: bullPrefix(config.redisPrefix) }),
    ]),
  );
  for (const q of Object.values(counted)) q.on('error', () => {});
  // Only asked when the pool uses deadlines (the answer feeds nothing else).
  const othersWaiting = async (queue: string) => config.jobDeadlines && ((await counted[queue]?.getWaitingCount().catch(() => 0)) ?? 0) > 0;

  const run = async (job: BullJob): Promise<QueueReturn> => {
    const data = job.data as EncodeQueueData | DecodeQueueData;
    // Nobody waits for a job past its deadline: drop it before reading its input.
    if (config.jobDeadlines && data.deadline !== undefined && Date.now() >= data.deadline) {
      metrics.jobsExpired.inc({ queue: job.queueName, stage: 'queued' });
      await redis.del(data.input);
      return { ok: false, expired: 'queued' };
    }
    const input = await redis.getBuffer(data.input);
    if (!input) throw new UnrecoverableError(`input ${data.input} ${INPUT_LOST}`);
    const bytes = new Uint8Array(input.buffer, input.byteOffset, input.length);
    try {
      let ret: QueueReturn;
      const output = blobKey(config.redisPrefix, `${job.queueName}-${job.id}-out`);
      const queued = { othersWaiting: await othersWaiting(job.queueName) };
      if (job.name === QUEUES.encode) {
        const { bitstream, reconstruction, clientCopy, ...rest } = await pool.encode(
          { ...(data as EncodeQueueData), image: bytes },
          queued,
        );
        await redis.set(output, Buffer.from(bitstream), 'EX', outputTtl);
        // Image files travel like the bitstream: binary values, their keys in the result.
        const file = async (name: string, image: Uint8Array) => {
          const key = blobKey(config.redisPrefix, `${job.queueName}-${job.id}-${name}`);
          await redis.set(key, Buffer.from(image), 'EX', outputTtl);
          return key;
        };
        const value: EncodeQueueValue = rest;
        ret = { ok: true, value, output };
        if (reconstruction) {
          const { image, ...meta } = reconstruction;
          value.reconstruction = meta;
          ret.reconstructionOutput = await file('reconstruction', image);
        }
        if (clientCopy) {
          const { image, ...meta } = clientCopy;
          value.clientCopy = meta;
          ret.clientCopyOutput = await file('client-copy', image);
        }
      } else {
        const { image, ...value } = await pool.decode({ ...(data as DecodeQueueData), bitstream: bytes }, queued);
        await redis.set(output, Buffer.from(image), 'EX', outputTtl);
        ret = { ok: true, value, output };
      }
      await redis.del(data.input);
      return ret;
    } catch (e) {
      // Bad input is an answer, not a failure: no retries, the gateway turns it into a 4xx.
      if (isCodecError(e)) {
        await redis.del(data.input);
        return { ok: false, error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } };
      }
      // Past its deadline (the pool counted it and stops its thread at a safe point): an answer, not a
      // failure to retry. A crashed thread is worth another attempt.
      if (e instanceof JobTimeoutError) {
        await redis.del(data.input);
        return { ok: false, expired: 'running' };
      }
      throw e;
    }
  };

  // The metrics port is bound before any job is taken or heartbeat sent: a worker that cannot serve
  // its probes stops here with a clear error instead of crashing after gateways have counted it.
  let workers: Worker[] = [];
  let server: Server | undefined;
  if (config.workerMetricsPort) {
    try {
      server = await serveWorkerMetrics(config.workerMetricsPort, metrics, () => workers.length > 0 && workers.every((w) => w.isRunning()));
    } catch (e) {
      await pool.close();
      await Promise.all(Object.values(counted).map((q) => q.close()));
      await redis.quit().catch(() => redis.disconnect());
      throw new WorkerStartError(
        `cannot serve metrics on port ${config.workerMetricsPort} (VLMPRESS_WORKER_METRICS_PORT): ${(e as Error).message}`,
      );
    }
  }
  workers = [QUEUES.encode, QUEUES.decode].map((name) => {
    const w = new Worker(name, process_, {
      connection: bullConnection(redisUrl, `vlmpress-worker-${name}`),
      prefix: bullPrefix(config.redisPrefix),
      concurrency: config.workerConcurrency,
      // Short locks, renewed while the job runs in a thread: a crashed worker's job is retried in time.
      ...lockSettings(config.jobTimeoutMs),
    });
    w.on('failed', (job, err) => log.warn({ queue: name, job: job?.id, attempts: job?.attemptsMade, err: err.message }, 'job failed'));
    w.on('error', (err) => log.error({ queue: name, err: err.message }, 'worker error'));
    return w;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // Announce the worker only once it can take jobs: gateways report ready from these heartbeats.
  await beat();
  const beatTimer = setInterval(() => void beat(), HEARTBEAT_INTERVAL_MS);
  beatTimer.unref();
  log.info(
    {
      worker: id,
      models: models.map((m) => `${m.name} (${m.provider})`),
      concurrency: config.workerConcurrency,
      threads: config.workerThreads,
    },
    'queue worker ready',
  );

  return {
    heartbeat,
    metrics,
    async close() {
      clearInterval(beatTimer);
      server?.close();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(Object.values(counted).map((q) => q.close()));
      await pool.close();
      await redis
        .multi()
        .zrem(keys.beats, id)
        .hdel(keys.info, id)
        .exec()
        .catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
