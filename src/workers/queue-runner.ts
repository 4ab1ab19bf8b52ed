/**
 * Redis job driver (REDIS_URL set): the gateway adds encode/decode jobs to BullMQ queues and awaits
 * their results through queue events; `npm run worker` processes run them (queue-worker.ts) with the
 * same processor as the embedded pool. Binary inputs and outputs travel as Redis values with a TTL.
 * Identical jobs in flight at the same time share one run, across gateways.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { CodecError, describeModels } from '../codec/index.js';
import { bullConnection, bullProducerConnection, redactUrl } from '../infra/redis.js';
import {
  JobLostError,
  JobTimeoutError,
  RedisUnavailableError,
  ShuttingDownError,
  type DecodeJob,
  type DecodeJobResult,
  type EncodeJob,
  type EncodeJobResult,
  type JobRunner,
  type LoadedModel,
  type RunnerHealth,
} from './jobs.js';
import {
  blobKey,
  blobTtlSeconds,
  bullPrefix,
  COLLECT_SCRIPT,
  INPUT_LOST,
  HEARTBEAT_TTL_MS,
  jobDedupId,
  LEAVE_SCRIPT,
  LIVE_SCRIPT,
  QUEUES,
  waitersKey,
  workerKeys,
  type DecodeQueueData,
  type EncodeQueueData,
  type EncodeQueueValue,
  type QueueName,
  type QueueReturn,
  type WorkerHeartbeat,
} from './queue-protocol.js';

export interface QueueRunnerOptions {
  redis: Redis;
  redisUrl: string;
  prefix: string;
  jobTimeoutMs: number;
  attempts: number;
  backoffMs: number;
  modelDirs?: string[];
  /** false: jobs carry no deadline and workers run them to the end (for comparisons; see ThreadPoolOptions) */
  deadlines?: boolean;
  /** a job this gateway removed from its queue before any worker took it: its deadline had passed */
  onExpired?: (queue: QueueName) => void;
}

export class QueueRunner implements JobRunner {
  readonly mode = 'redis' as const;
  private readonly queues: Record<QueueName, Queue>;
  private readonly events: Record<QueueName, QueueEvents>;
  private readonly blobTtl: number;
  private closing = false;

  constructor(private readonly options: QueueRunnerOptions) {
    const common = { prefix: bullPrefix(options.prefix) };
    this.queues = {
      encode: new Queue(QUEUES.encode, { ...common, connection: bullProducerConnection(options.redisUrl, 'vlmpress-gateway') }),
      decode: new Queue(QUEUES.decode, { ...common, connection: bullProducerConnection(options.redisUrl, 'vlmpress-gateway') }),
    };
    this.events = {
      encode: new QueueEvents(QUEUES.encode, { ...common, connection: bullConnection(options.redisUrl, 'vlmpress-gateway-events') }),
      decode: new QueueEvents(QUEUES.decode, { ...common, connection: bullConnection(options.redisUrl, 'vlmpress-gateway-events') }),
    };
    // Connection errors surface through the commands that fail; the events only need a listener.
    for (const q of Object.values(this.queues)) q.on('error', () => {});
    for (const e of Object.values(this.events)) e.on('error', () => {});
    this.blobTtl = blobTtlSeconds(options.jobTimeoutMs, options.attempts, options.backoffMs);
  }

  private async run(
    queue: QueueName,
    input: Uint8Array,
    data: Omit<EncodeQueueData, 'input' | 'deadline'> | Omit<DecodeQueueData, 'input' | 'deadline'>,
    requestDeadline: number | undefined,
  ): Promise<{ value: Record<string, unknown>; output: Buffer | null; reconstruction: Buffer | null; clientCopy: Buffer | null }> {
    if (this.closing) throw new ShuttingDownError();
    const { redis, prefix, jobTimeoutMs, attempts, backoffMs } = this.options;
    // While Redis is away, answer at once (503 redis_unavailable) instead of queueing commands.
    if (redis.status !== 'ready') throw new RedisUnavailableError(redis.status);
    // Identical jobs in flight at once, from any gateway, run once: BullMQ keeps one job per
    // deduplication id until it finishes, and every request waiting on it is counted, so the last to
    // collect the outputs deletes them.
    const dedupId = jobDedupId(queue, data, input);
    const waiters = waitersKey(prefix, queue, dedupId);
    const jobId = randomUUID();
    const inputKey = blobKey(prefix, jobId);
    // The deadline is not part of the deduplication id: a request joining an identical job in flight
    // shares its deadline (the earlier one; the joiner may get job_timeout a little before its own).
    const now = Date.now();
    const deadline = Math.min(requestDeadline ?? Infinity, now + jobTimeoutMs);
    await redis
      .multi()
      .set(inputKey, Buffer.from(input.buffer, input.byteOffset, input.length), 'EX', this.blobTtl)
      .incr(waiters)
      .expire(waiters, this.blobTtl)
      .exec();
    let job: BullJob | undefined;
    let timer: NodeJS.Timeout | undefined;
    let ret: QueueReturn;
    try {
      job = await this.queues[queue].add(
        queue,
        { ...data, input: inputKey, ...(this.options.deadlines === false ? {} : { deadline }) },
        {
          jobId,
          deduplication: { id: dedupId },
          attempts,
          backoff: { type: 'exponential', delay: backoffMs },
          removeOnComplete: { age: 600, count: 1000 },
          removeOnFail: { age: 24 * 3600, count: 10_000 },
        },
      );
      // Another request's job runs the same work: ours is not needed, nor its input.
      if (job.id !== jobId) await redis.del(inputKey);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new JobTimeoutError(jobTimeoutMs)), Math.max(0, deadline - now));
      });
      const finished = job.waitUntilFinished(this.events[queue]).catch((e: Error) => {
        if (e.message.includes(INPUT_LOST)) throw new JobLostError('input');
        // The job itself failed in a worker (every attempt): our fault, reported as such.
        throw new Error(`${queue} job failed in the worker: ${e.message}`);
      });
      ret = (await Promise.race([finished, timeout])) as QueueReturn;
    } catch (e) {
      const left = (await redis.eval(LEAVE_SCRIPT, 1, waiters).catch(() => 1)) as number;
      if (e instanceof JobTimeoutError && job && left <= 0) {
        // Nobody is waiting any more: drop the job if no worker has taken it yet (remove() refuses a
        // job a worker holds; that one stops at its next safe point, as its deadline has passed).
        await job.remove().then(
          () => this.options.onExpired?.(queue),
          () => {},
        );
        await redis.del(inputKey).catch(() => {});
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (!ret.ok) {
      await redis.eval(LEAVE_SCRIPT, 1, waiters).catch(() => {});
      // The worker dropped or stopped the job at its deadline: the same answer as our own timer's.
      if ('expired' in ret) throw new JobTimeoutError(jobTimeoutMs);
      throw new CodecError(ret.error.code, ret.error.message, ret.error.details);
    }
    // The job's binary outputs, read and (by the last waiter) deleted in one script.
    const present = [ret.output, ret.reconstructionOutput, ret.clientCopyOutput].filter((k): k is string => k !== undefined);
    const collected = (await redis.callBuffer('EVAL', COLLECT_SCRIPT, present.length + 1, waiters, ...present)) as (Buffer | null)[];
    const read = (k: string | undefined) => (k === undefined ? null : (collected[present.indexOf(k)] ?? null));
    return {
      value: ret.value as unknown as Record<string, unknown>,
      output: read(ret.output),
      reconstruction: read(ret.reconstructionOutput),
      clientCopy: read(ret.clientCopyOutput),
    };
  }

  async encode(job: Omit<EncodeJob, 'kind'>): Promise<EncodeJobResult> {
    const { image, deadline, ...settings } = job;
    const { value, output, reconstruction, clientCopy } = await this.run('encode', image, settings, deadline);
    if (!output) throw new JobLostError('bitstream');
    const { reconstruction: meta, clientCopy: copyMeta, ...rest } = value as unknown as EncodeQueueValue;
    const result: EncodeJobResult = { ...rest, bitstream: new Uint8Array(output) };
    if (meta) {
      if (!reconstruction) throw new JobLostError('reconstruction');
      result.reconstruction = { ...meta, image: new Uint8Array(reconstruction) };
    }
    if (copyMeta) {
      if (!clientCopy) throw new JobLostError('copy of the client image');
      result.clientCopy = { ...copyMeta, image: new Uint8Array(clientCopy) };
    }
    return result;
  }

  async decode(job: Omit<DecodeJob, 'kind'>): Promise<DecodeJobResult> {
    const { bitstream, deadline, ...settings } = job;
    const { value, output } = await this.run('decode', bitstream, settings, deadline);
    if (!output) throw new JobLostError('decoded image');
    return { ...(value as unknown as Omit<DecodeJobResult, 'image'>), image: new Uint8Array(output) };
  }

  /** Live workers, from their heartbeats: one script over the workers' own keys, never a keyspace scan. */
  async workers(): Promise<WorkerHeartbeat[]> {
    const keys = workerKeys(this.options.prefix);
    const values = (await this.options.redis.eval(LIVE_SCRIPT, 2, keys.beats, keys.info, HEARTBEAT_TTL_MS)) as (string | null)[];
    return values.flatMap((v) => (v ? [JSON.parse(v) as WorkerHeartbeat] : []));
  }

  async ready(): Promise<{ models: LoadedModel[] }> {
    // The gateway loads no graphs in this mode: it describes the bundled models from their manifests.
    const models = await describeModels(this.options.modelDirs);
    await Promise.all(Object.values(this.queues).map((q) => q.waitUntilReady()));
    await Promise.all(Object.values(this.events).map((e) => e.waitUntilReady()));
    return {
      models: models.map((m) => ({
        name: m.name,
        id: m.id,
        provider: 'queue workers',
        levels: m.levels,
        defaultQuality: m.defaultQuality,
      })),
    };
  }

  async health(): Promise<RunnerHealth> {
    const checks: RunnerHealth = {};
    try {
      await this.options.redis.ping();
      // The queues have connections of their own, which come back on their own schedule
      // (their adds fail at once while disconnected, so one cheap count each tells).
      await Promise.all(Object.values(this.queues).map((q) => q.getJobCounts('waiting')));
      checks['redis'] = { ok: true, detail: redactUrl(this.options.redisUrl) };
    } catch (e) {
      checks['redis'] = { ok: false, detail: (e as Error).message };
      return checks;
    }
    const [models, workers] = await Promise.all([describeModels(this.options.modelDirs), this.workers()]);
    const serving = workers.filter((w) => w.models.some((m) => m.id === models[0]!.id));
    checks['workers'] = serving.length
      ? {
          ok: true,
          detail: `${serving.length} worker(s): ${serving.map((w) => `${w.host}:${w.pid} (${w.models.map((m) => m.provider).join('/')})`).join(', ')}`,
        }
      : { ok: false, detail: `no live worker serves ${models[0]!.name}; start one with npm run worker` };
    return checks;
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    let waiting = 0;
    let active = 0;
    for (const q of Object.values(this.queues)) {
      const c = await q.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      waiting += (c['waiting'] ?? 0) + (c['prioritized'] ?? 0) + (c['delayed'] ?? 0);
      active += c['active'] ?? 0;
    }
    return { waiting, active };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...Object.values(this.events).map((e) => e.close()), ...Object.values(this.queues).map((q) => q.close())]);
  }
}
