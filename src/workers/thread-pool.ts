/**
 * Embedded job driver: a pool of worker threads (piscina) running the processor, for deployments
 * without Redis. Same processor and results as the BullMQ driver.
 *
 * Jobs wait in this driver's own FIFO queue and go to piscina only when a thread is free. Each job
 * carries its deadline (the caller's, or now + the job timeout) into the thread. When it passes, the
 * caller is answered `job_timeout` at once; a job still queued is dropped, and one on a thread stops
 * at the codec's next safe point (between decoder tiles, stages, budget probes), so the thread goes
 * back to work somebody waits for. A job whose deadline is nearer than what its queue's jobs almost
 * always take is not started either (job-durations.ts). The thread is never terminated: tearing a
 * worker down while ONNX Runtime runs in it aborts the whole process (Napi::Error); what cannot stop
 * (one AV1 encode, one tile) is bounded by the pixel limits. Piscina's own queue is not used, so abort
 * signals cannot reorder it (piscina #1031): first come, first served.
 */
import { Piscina } from 'piscina';
import {
  JobTimeoutError,
  ShuttingDownError,
  type RunnerHealth,
  type DecodeJob,
  type DecodeJobResult,
  type EncodeJob,
  type EncodeJobResult,
  type JobObserver,
  type JobOutcome,
  type JobRunner,
  type LoadedModel,
} from './jobs.js';
import { JobDurations } from './job-durations.js';
import { unwrap, type ProcessorOptions } from './processor.js';

export interface ThreadPoolOptions extends ProcessorOptions {
  threads: number;
  jobTimeoutMs: number;
  /** false: jobs are not told their deadline and run to the end (the behaviour before deadlines, for comparisons) */
  deadlines?: boolean;
  observer?: JobObserver;
}

const MODEL_LOAD_TIMEOUT_MS = 120_000;

type PoolJob = EncodeJob | DecodeJob | { kind: 'ready' };

interface Waiter {
  job: PoolJob;
  /** epoch ms: when the caller is answered job_timeout, and what the thread is told */
  deadline: number;
  /** other jobs wait for this pool outside its own queue */
  othersWaiting: boolean;
  timeoutMs: number;
  /** answered (result, error or timeout): nothing more may be sent to the caller */
  settled: boolean;
  started: boolean;
  /** performance.now() when a thread took it */
  startedAt: number;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

export class ThreadPoolRunner implements JobRunner {
  readonly mode = 'embedded' as const;
  private readonly pool: Piscina;
  private readonly threads: number;
  private readonly timeoutMs: number;
  private readonly deadlines: boolean;
  private readonly observer: JobObserver | undefined;
  private readonly durations = new JobDurations();
  /** jobs waiting for a thread whose caller still waits (one that times out leaves at once) */
  private readonly queue: Waiter[] = [];
  /** jobs on a thread, abandoned ones included: they still occupy it */
  private running = 0;
  private closing = false;

  constructor(options: ThreadPoolOptions) {
    const { threads, jobTimeoutMs, deadlines, observer, ...processor } = options;
    this.observer = observer;
    this.threads = threads;
    this.timeoutMs = jobTimeoutMs;
    this.deadlines = deadlines ?? true;
    this.pool = new Piscina({
      filename: new URL('./pool-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      workerData: processor,
    });
  }

  private run<T>(job: PoolJob, timeoutMs = this.timeoutMs, othersWaiting = false): Promise<T> {
    if (this.closing) return Promise.reject(new ShuttingDownError());
    const now = Date.now();
    const deadline = Math.min(job.kind === 'ready' ? Infinity : (job.deadline ?? Infinity), now + timeoutMs);
    const sent: PoolJob = job.kind !== 'ready' && this.deadlines ? { ...job, deadline } : job;
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        job: sent,
        deadline,
        othersWaiting,
        timeoutMs,
        settled: false,
        started: false,
        startedAt: 0,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: setTimeout(
          () => {
            w.settled = true;
            if (!w.started) {
              // Nobody will read it: it leaves the queue now and never runs.
              this.queue.splice(this.queue.indexOf(w), 1);
              if (job.kind !== 'ready') this.observer?.expired(job.kind, 'queued');
            }
            reject(new JobTimeoutError(timeoutMs));
          },
          Math.max(0, deadline - now),
        ),
      };
      this.queue.push(w);
      this.pump();
    });
  }

  /** Hand queued jobs to free threads, oldest first; one too close to its deadline to finish is answered instead. */
  private pump(): void {
    while (this.running < this.threads && this.queue.length > 0) {
      const w = this.queue.shift()!;
      const needed = w.job.kind === 'ready' ? 0 : this.durations.neededMs(w.job.kind, this.queue.length > 0 || w.othersWaiting);
      if (w.job.kind !== 'ready' && this.deadlines && w.deadline - Date.now() < needed) {
        w.settled = true;
        clearTimeout(w.timer);
        this.observer?.expired(w.job.kind, 'queued');
        w.reject(new JobTimeoutError(w.timeoutMs));
        continue;
      }
      w.started = true;
      w.startedAt = performance.now();
      this.running++;
      this.pool.run(w.job).then(
        (outcome) => this.finish(w, outcome as JobOutcome<unknown>),
        (error) => this.finish(w, undefined, error),
      );
    }
  }

  private finish(w: Waiter, outcome: JobOutcome<unknown> | undefined, error?: unknown): void {
    this.running--;
    const { kind } = w.job;
    if (kind !== 'ready') {
      const expired = outcome && !outcome.ok && 'expired' in outcome ? outcome.expired : undefined;
      if (expired) this.observer?.expired(kind, expired);
      const ms = performance.now() - w.startedAt;
      if (outcome && !expired) this.durations.add(kind, ms);
      this.observer?.worked(kind, ms / 1000, w.settled || expired !== undefined);
    }
    if (!w.settled) {
      w.settled = true;
      clearTimeout(w.timer);
      try {
        if (outcome) w.resolve(unwrap(outcome, w.timeoutMs));
        else w.reject(error);
      } catch (e) {
        w.reject(e);
      }
    }
    this.pump();
  }

  /** `queue.othersWaiting`: jobs wait elsewhere for this pool (a queue worker's Redis queue), as for the start rule */
  encode(job: Omit<EncodeJob, 'kind'>, queue: { othersWaiting?: boolean } = {}): Promise<EncodeJobResult> {
    return this.run({ kind: 'encode', ...job }, this.timeoutMs, queue.othersWaiting);
  }

  decode(job: Omit<DecodeJob, 'kind'>, queue: { othersWaiting?: boolean } = {}): Promise<DecodeJobResult> {
    return this.run({ kind: 'decode', ...job }, this.timeoutMs, queue.othersWaiting);
  }

  private loaded: Promise<{ models: LoadedModel[] }> | undefined;

  async ready(): Promise<{ models: LoadedModel[] }> {
    // Warm every thread so the first requests do not pay for session creation.
    if (!this.loaded) {
      // Loading the models (CUDA initialisation included) may take longer than a job may.
      const loadTimeoutMs = Math.max(this.timeoutMs, MODEL_LOAD_TIMEOUT_MS);
      const loading = Promise.all(
        Array.from({ length: this.threads }, () => this.run<{ models: LoadedModel[] }>({ kind: 'ready' }, loadTimeoutMs)),
      ).then((all) => all[0]!);
      // A failed load is tried again by the next call.
      loading.catch(() => {
        if (this.loaded === loading) this.loaded = undefined;
      });
      this.loaded = loading;
    }
    return this.loaded;
  }

  /**
   * From the warm-up's result, without sending a job: a readiness probe queued behind real work
   * would time out under load and take every busy replica out of service at once.
   */
  async health(): Promise<RunnerHealth> {
    if (this.closing) return { models: { ok: false, detail: 'shutting down' } };
    try {
      const r = await this.ready();
      return { models: { ok: true, detail: r.models.map((m) => `${m.name} (${m.provider})`).join(', ') } };
    } catch (e) {
      return { models: { ok: false, detail: (e as Error).message } };
    }
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    return { waiting: this.queue.length, active: this.running };
  }

  async close(): Promise<void> {
    this.closing = true;
    // Queued jobs still run (their callers wait for them); piscina's close waits for running ones.
    while (this.running > 0 || this.queue.length > 0) await new Promise((r) => setTimeout(r, 20));
    await this.pool.close();
  }
}
