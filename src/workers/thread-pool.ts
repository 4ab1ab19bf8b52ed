/**
 * Embedded job driver: a pool of worker threads (piscina) running the processor, for deployments
 * without Redis. Same processor and results as the BullMQ driver.
 *
 * Jobs wait in this driver's own FIFO queue and go to piscina only when a thread is free. A job that
 * overruns its timeout is answered with `job_timeout` and *abandoned*: its thread finishes the work
 * and the result is dropped. The thread is never terminated: tearing a worker down while ONNX Runtime
 * runs in it aborts the whole process (Napi::Error). Work is bounded by the pixel limits instead, and
 * a job that times out while still queued never starts. Piscina's own queue is not used, so abort
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
  type JobOutcome,
  type JobRunner,
} from './jobs.js';
import { unwrap, type ProcessorOptions } from './processor.js';

export interface ThreadPoolOptions extends ProcessorOptions {
  threads: number;
  jobTimeoutMs: number;
  /** a job was answered with job_timeout while running (its thread finishes it; the result is dropped) */
  onAbandoned?: () => void;
}

const MODEL_LOAD_TIMEOUT_MS = 120_000;

type PoolJob = EncodeJob | DecodeJob | { kind: 'ready' };

interface Waiter {
  job: PoolJob;
  /** answered (result, error or timeout): nothing more may be sent to the caller */
  settled: boolean;
  started: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

export class ThreadPoolRunner implements JobRunner {
  readonly mode = 'embedded' as const;
  private readonly pool: Piscina;
  private readonly threads: number;
  private readonly timeoutMs: number;
  private readonly queue: Waiter[] = [];
  /** queued jobs whose caller still waits (timed-out ones stay in `queue` until dequeued) */
  private waiting = 0;
  /** jobs on a thread, abandoned ones included: they still occupy it */
  private running = 0;
  private readonly onAbandoned: () => void;
  private closing = false;

  constructor(options: ThreadPoolOptions) {
    const { threads, jobTimeoutMs, onAbandoned, ...processor } = options;
    this.onAbandoned = onAbandoned ?? (() => {});
    this.threads = threads;
    this.timeoutMs = jobTimeoutMs;
    this.pool = new Piscina({
      filename: new URL('./pool-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      workerData: processor,
    });
  }

  private run<T>(job: PoolJob, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.closing) return Promise.reject(new ShuttingDownError());
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        job,
        settled: false,
        started: false,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: setTimeout(() => {
          w.settled = true;
          if (w.started) this.onAbandoned();
          else this.waiting--;
          reject(new JobTimeoutError(timeoutMs));
        }, timeoutMs),
      };
      this.queue.push(w);
      this.waiting++;
      this.pump();
    });
  }

  /** Hand queued jobs to free threads, oldest first, skipping those whose caller gave up. */
  private pump(): void {
    while (this.running < this.threads && this.queue.length > 0) {
      const w = this.queue.shift()!;
      if (w.settled) continue;
      this.waiting--;
      w.started = true;
      this.running++;
      this.pool.run(w.job).then(
        (outcome) => this.finish(w, () => w.resolve(unwrap(outcome as JobOutcome<unknown>))),
        (error) => this.finish(w, () => w.reject(error)),
      );
    }
  }

  private finish(w: Waiter, answer: () => void): void {
    this.running--;
    if (!w.settled) {
      w.settled = true;
      clearTimeout(w.timer);
      try {
        answer();
      } catch (e) {
        w.reject(e);
      }
    }
    this.pump();
  }

  encode(job: Omit<EncodeJob, 'kind'>): Promise<EncodeJobResult> {
    return this.run({ kind: 'encode', ...job });
  }

  decode(job: Omit<DecodeJob, 'kind'>): Promise<DecodeJobResult> {
    return this.run({ kind: 'decode', ...job });
  }

  private loaded: Promise<{ models: { name: string; id: string; provider: string; levels: number }[] }> | undefined;

  async ready(): Promise<{ models: { name: string; id: string; provider: string; levels: number }[] }> {
    // Warm every thread so the first requests do not pay for session creation.
    if (!this.loaded) {
      // Loading the models (CUDA initialisation included) may take longer than a job may.
      const loadTimeoutMs = Math.max(this.timeoutMs, MODEL_LOAD_TIMEOUT_MS);
      const loading = Promise.all(
        Array.from({ length: this.threads }, () =>
          this.run<{ models: { name: string; id: string; provider: string; levels: number }[] }>({ kind: 'ready' }, loadTimeoutMs),
        ),
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
    return { waiting: this.waiting, active: this.running };
  }

  async close(): Promise<void> {
    this.closing = true;
    // Queued jobs still run (their callers wait for them); piscina's close waits for running ones.
    while (this.running > 0 || this.waiting > 0) await new Promise((r) => setTimeout(r, 20));
    await this.pool.close();
  }
}
